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

COLUMNS = (
    "HTTP",
    "link drops up / down",
    "TCP retransmitted to clients",
    "QUIC lost per stream, median / max",
    "added delay p99 ms",
)


def _path_stats(phase: PhaseRecord, key: str) -> Mapping[str, Any] | None:
    for figures in phase.path_parameters.values():
        if isinstance(figures, dict) and isinstance(figures.get(key), dict):
            stats: Mapping[str, Any] = figures[key]
            return stats
    return None


def loss_row(name: str, point: Point) -> str | None:
    """One transport's row at one point, or None when nothing there emulated packets."""
    phase = point.phases[name]
    link = _path_stats(phase, "forwarder_stats")
    quic = [r.packets_lost for r in phase.requests if r.packets_lost is not None]
    if link is None and not quic:
        return None
    drops = "–"
    if link is not None:
        drops = f"{number(link['up']['lost'])} / {number(link['down']['lost'])}"
    relay = _path_stats(phase, "relay_stats") or {}
    segments = relay.get("client_data_segments")
    retransmits = "–"
    if segments:
        retransmits = f"{number(relay.get('client_retransmits'))} of {number(segments)}"
    median = statistics.median(quic) if quic else None
    if median is not None and float(median).is_integer():
        median = int(median)
    lost = f"{number(median)} / {number(max(quic))}" if quic else "–"
    versions = sorted({r.http_version for r in phase.requests if r.http_version})
    summary = point.summaries.get(name)
    p99 = None if summary is None else summary.added_delay_ms.p99
    cells = ("/".join(versions) or "–", drops, retransmits, lost, number(p99))
    return transport_cell(name) + "".join(f"<td>{esc(c)}</td>" for c in cells)


def loss_section(run: RunResult) -> str:
    """`<h2>Packet loss</h2>` with a table per point, or "" when no point had any."""
    tables = []
    for point in run.points:
        rows = [row for name in point.phases if (row := loss_row(name, point)) is not None]
        if not rows:
            continue
        heading = f"<h3>{esc(f'{run.sweep_axis} = {point.value}')}</h3>" if run.is_sweep else ""
        head = '<th class="name">transport</th>' + "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
        body = "".join(f"<tr>{row}</tr>" for row in rows)
        tables.append(f"{heading}<table><tr>{head}</tr>{body}</table>")
    if not tables:
        return ""
    return (
        "<h2>Packet loss</h2><p>What the emulated link dropped each way (packets), what TCP "
        "retransmitted towards the clients (segments, of the data segments sent: the "
        "relay's TCP_INFO counts per path), and per HTTP/3 stream the packets its QUIC "
        "connection lost while the stream was open (streams sharing a connection each count "
        "its losses in their time).</p>" + "".join(tables)
    )
