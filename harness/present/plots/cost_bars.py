"""What delivering the tokens costs, as bars per transport (and run): bytes on the wire and
HTTP requests per token, and CPU time per 1,000 tokens."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from harness.present.plots.style import HATCHES, color, new_figure, whisker
from harness.present.plots.subjects import Subject, tagged, transports_of


def _bar_slots(count: int) -> Iterator[tuple[int, float, float]]:
    """Side-by-side bars within one group: (k, offset from the group centre, width)."""
    width = 0.8 / count
    for k in range(count):
        yield k, -0.4 + width * (k + 0.5), width


def cost(subjects: Sequence[Subject], title: str) -> Figure:
    """Left: bytes on the wire per token received (both directions), stacked: the tokens'
    own UTF-8 text (payload), HTTP request and response heads, and the rest (framing,
    envelopes, request bodies, WebSocket frame headers). Right: HTTP requests (or WebSocket
    upgrades) per stream, log scale: push transports need one, polling one per poll. Error
    bars: the 95% interval of each total, resampling streams."""
    fig = new_figure(title, width=11)
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    names = transports_of(subjects)
    parts = (
        ("payload (token text)", 1.0, ""),
        ("HTTP heads", 0.55, ""),
        ("framing & rest", 0.25, "//"),
    )
    for k, offset, width in _bar_slots(len(subjects)):
        s = subjects[k]
        for pos, name in enumerate(names):
            summary = s.summaries.get(name)
            if summary is None or summary.wire_bytes_per_token is None:
                continue
            payload = summary.payload_bytes_per_token or 0.0
            heads = summary.header_bytes_per_token or 0.0
            rest = max(summary.wire_bytes_per_token - payload - heads, 0.0)
            bottom = 0.0
            for (_, alpha, hatch), height in zip(parts, (payload, heads, rest), strict=True):
                left.bar(
                    pos + offset,
                    height,
                    width,
                    bottom=bottom,
                    color=color(name),
                    alpha=alpha,
                    hatch=hatch or HATCHES[k % 4],
                    edgecolor=color(name),
                )
                bottom += height
            whisker(left, pos + offset, bottom, summary.wire_bytes_per_token_ci)
            left.annotate(
                tagged(subjects, k, f"{summary.wire_bytes_per_token:.0f}"),
                (pos + offset, bottom),
                ha="center",
                va="bottom",
                fontsize=9,
            )
            right.bar(
                pos + offset,
                summary.requests_per_stream,
                width,
                color=color(name),
                hatch=HATCHES[k % 4],
                edgecolor="white",
            )
            whisker(
                right, pos + offset, summary.requests_per_stream, summary.requests_per_stream_ci
            )
            right.annotate(
                f"{summary.requests_per_stream:.3g}",
                (pos + offset, summary.requests_per_stream),
                ha="center",
                va="bottom",
                fontsize=9,
            )
    for ax in (left, right):
        ax.set_xticks(range(len(names)), names, rotation=20)
        ax.set_xlabel("transport")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    left.set_ylabel("bytes on the wire per token (both directions)")
    left.margins(y=0.15)
    left.legend(
        handles=[
            Patch(facecolor="#555555", alpha=alpha, hatch=hatch, label=label)
            for label, alpha, hatch in parts
        ],
        loc="upper right",
    )
    right.set_yscale("log")
    right.set_ylabel("HTTP requests per stream (log scale)")
    right.margins(y=0.2)
    return fig


def cpu(subjects: Sequence[Subject], title: str) -> Figure:
    """CPU time (user + system) spent per 1,000 tokens delivered: the server process (solid)
    and the benchmark client's event loop (pale, hatched). Lower is cheaper; it is the bill
    for delivering the same tokens, and grows with requests and messages per token."""
    fig = new_figure(title)
    ax = fig.add_subplot()
    names = transports_of(subjects)
    slots = list(_bar_slots(2 * len(subjects)))
    for k, s in enumerate(subjects):
        for pos, name in enumerate(names):
            summary = s.summaries.get(name)
            if summary is None:
                continue
            for side, value in enumerate(
                (summary.server_cpu_ms_per_1k_tokens, summary.client_cpu_ms_per_1k_tokens)
            ):
                if value is None:
                    continue
                _, offset, width = slots[2 * k + side]
                ax.bar(
                    pos + offset,
                    value,
                    width,
                    color=color(name),
                    alpha=1.0 if side == 0 else 0.4,
                    hatch=HATCHES[k % 4] if side == 0 else "\\\\",
                    edgecolor=color(name),
                )
                ax.annotate(
                    tagged(subjects, k, f"{value:.0f}"),
                    (pos + offset, value),
                    ha="center",
                    va="bottom",
                    fontsize=8 + (k == 0),
                )
    ax.set_xticks(range(len(names)), names)
    ax.set_xlabel("transport")
    ax.set_ylabel("CPU ms per 1,000 tokens")
    ax.margins(y=0.15)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(
        handles=[
            Patch(facecolor="#555555", label="server process"),
            Patch(facecolor="#555555", alpha=0.4, hatch="\\\\", label="client (driver loop)"),
        ],
        loc="upper right",
    )
    return fig
