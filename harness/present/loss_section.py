"""The report's section on packet loss (`net:`, the packet emulator): per point and
transport, what the link dropped each way, what TCP retransmitted towards the clients
(the relay's TCP_INFO counts) and what each HTTP/3 stream's QUIC connection lost while it
was open, beside the added delay's tail that the losses cost."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from harness.analyse.results import Point, RunResult
from harness.measure.records import PhaseRecord
from harness.present.html import esc, number, transport_cell

COLUMNS = ("HTTP", "QUIC lost per stream, median / max", "added delay p99 ms")


def _path_stats(phase: PhaseRecord, key: str) -> Mapping[str, Any] | None:
    for figures in phase.path_parameters.values():
        if isinstance(figures, dict) and isinstance(figures.get(key), dict):
            stats: Mapping[str, Any] = figures[key]
            return stats
    return None


def link_line(point: Point) -> str | None:
    """What the link did during the point's round, every transport's phase in it: its drops
    each way (loss and a full queue) and TCP's retransmissions towards the clients."""
    for phase in point.phases.values():
        link = _path_stats(phase, "forwarder_stats")
        if link is None:
            continue
        parts = [
            f"the link dropped {number(link[way]['lost'])} packets {way}"
            + (
                f" and {number(link[way]['queue_drops'])} at its full queue"
                if link[way].get("queue_drops")
                else ""
            )
            for way in ("up", "down")
        ]
        relay = _path_stats(phase, "relay_stats") or {}
        segments = relay.get("client_data_segments")
        if segments:
            retransmits = number(relay.get("client_retransmits"))
            parts.append(
                f"TCP retransmitted {retransmits} of {number(segments)} segments to clients"
            )
        return "; ".join(parts)
    return None


def loss_row(name: str, point: Point) -> str:
    """One transport's row at one point: its streams' HTTP, each HTTP/3 stream's QUIC
    losses, its added delay's p99."""
    phase = point.phases[name]
    quic = [r.packets_lost for r in phase.requests if r.packets_lost is not None]
    median = statistics.median(quic) if quic else None
    if median is not None and float(median).is_integer():
        median = int(median)
    lost = f"{number(median)} / {number(max(quic))}" if quic else "–"
    versions = sorted({r.http_version for r in phase.requests if r.http_version})
    summary = point.summaries.get(name)
    p99 = None if summary is None else summary.added_delay_ms.p99
    cells = ("/".join(versions) or "–", lost, number(p99))
    return transport_cell(name) + "".join(f"<td>{esc(c)}</td>" for c in cells)


def has_losses(point: Point) -> bool:
    """The point ran on the packet emulator, or over QUIC."""
    return link_line(point) is not None or any(
        r.packets_lost is not None for phase in point.phases.values() for r in phase.requests
    )


def loss_section(run: RunResult) -> str:
    """`<h2>Packet loss</h2>` with a table per point, or "" when no point had any."""
    tables = []
    head = '<th class="name">transport</th>' + "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    for point in run.points:
        if not has_losses(point):
            continue
        heading = f"<h3>{esc(f'{run.sweep_axis} = {point.value}')}</h3>" if run.is_sweep else ""
        line = link_line(point)
        link = f"<p>{esc(line)}.</p>" if line else ""
        body = "".join(f"<tr>{loss_row(name, point)}</tr>" for name in point.phases)
        tables.append(f"{heading}{link}<table><tr>{head}</tr>{body}</table>")
    if not tables:
        return ""
    return (
        "<h2>Packet loss</h2><p>What the emulated link dropped each way during the point "
        "(every transport's phase in it), what TCP retransmitted towards the clients (the "
        "relay's TCP_INFO counts), and per HTTP/3 stream the packets its QUIC connection lost "
        "while the stream was open (streams sharing a connection each count its losses in "
        "their time).</p>" + "".join(tables)
    )
