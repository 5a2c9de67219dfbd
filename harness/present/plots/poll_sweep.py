"""Charts, drawn from saved results only (`harness.analyse.results.load_run`), as PNG and SVG.

Each transport keeps one colour across every chart; every chart's title names the scenario.
Per-point charts show one point of a run: a plain run's only point, or a sweep's
representative point (`representative`). Sweep charts show every point of a sweep of their
axis. Every chart takes one or more `Subject`s, so `harness.analyse.compare` overlays several runs
with the same code: colour says the transport, line style / marker / hatch says the run.
Each chart function's docstring says how to read the chart; reports show it as the caption.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from harness.analyse import metrics
from harness.analyse.metrics import TransportSummary
from harness.analyse.results import Point, RunResult
from harness.measure.records import PhaseRecord, RequestRecord

COLORS = {
    "short_poll": "#d62728",
    "long_poll": "#ff7f0e",
    "sse": "#1f77b4",
    "chunked": "#2ca02c",
    "websocket": "#9467bd",
    "direct": "#7f7f7f",
}
SOURCE_COLOR = "#222222"
FORMATS = ("png", "svg")
PNG_DPI = 150  # reports show PNGs at 100 px per inch: sharp on high-density screens
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v")
HATCHES = ("", "//", "..", "xx")
MAX_CDF_POINTS = 2000  # a CDF with more samples is drawn through this many quantiles
LOG_FLOOR_MS = 1e-3  # log axes: values below 1 microsecond are drawn at 1 microsecond
GAP_FLOOR_MS = 1e-2  # inter-token gaps below 10 microseconds (one read) drawn at 10 microseconds
STYLE: dict[str, Any] = {
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "figure.titlesize": 12,
    "svg.fonttype": "none",  # SVG text stays text: smaller, searchable
}


def color(transport: str) -> str:
    return COLORS.get(transport, "#17becf")


@dataclass(frozen=True, slots=True)
class Subject:
    """One run on a chart: its label on an overlay ("" when a chart shows one run) and the
    point that per-point charts show."""

    label: str
    run: RunResult
    point: Point

    @property
    def phases(self) -> dict[str, PhaseRecord]:
        return self.point.phases

    @property
    def summaries(self) -> dict[str, TransportSummary]:
        return self.point.summaries


DrawFn = Callable[[Sequence[Subject], str], Figure]


@dataclass(frozen=True, slots=True)
class Chart:
    stem: str
    title: str
    draw: DrawFn
    sweep_axis: str | None = None  # drawn only for a sweep of this axis

    @property
    def caption(self) -> str:
        return " ".join((inspect.getdoc(self.draw) or "").split())

    def applies_to(self, runs: Sequence[RunResult]) -> bool:
        return self.sweep_axis is None or all(r.sweep_axis == self.sweep_axis for r in runs)


@dataclass(frozen=True, slots=True)
class DrawnChart:
    stem: str
    title: str
    caption: str
    png: Path
    svg: Path


def representative(run: RunResult) -> Point:
    """The point per-point charts show: a plain run's only point; in a sweep, the middle
    value (the lower of the two middle values for an even count)."""
    return run.points[(len(run.points) - 1) // 2]


def subject(run: RunResult, label: str = "") -> Subject:
    return Subject(label, run, representative(run))


# --- titles -----------------------------------------------------------------------------


def _fmt_value(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _setting(scenario: dict[str, Any], axis: str | None, value: object, key: str) -> object:
    if axis == key and value is not None:
        return value
    if key == "preset":
        return scenario.get("source", {}).get("preset")
    return scenario.get(key)


def describe(run: RunResult, point: Point | None) -> str:
    """Two lines naming the scenario and its load: at one point (`point`) or, for a sweep
    chart (`point` None), over the whole sweep."""
    scenario, axis = run.scenario, run.sweep_axis
    value = None if point is None else point.value
    source = scenario.get("source", {})
    preset = _setting(scenario, axis, value, "preset")
    overrides = [
        f"{label} {_fmt_value(source[key])}{unit}"
        for key, label, unit in (
            ("ttft_ms", "first token", " ms"),
            ("tokens_per_s", "", " tok/s"),
            ("tokens_per_response", "", " tokens"),
        )
        if source.get(key) is not None and axis != "preset"
    ]
    first = f"scenario {scenario.get('name')} · source {preset}"
    if overrides:
        first += f" ({', '.join(o.strip() for o in overrides)})"
    load = f"{scenario.get('requests')} streams per transport"
    if axis == "concurrency" and point is None:
        load += " at each point"
    else:
        load += f", {_fmt_value(_setting(scenario, axis, value, 'concurrency'))} in flight"
    parts = [load, f"framing {_setting(scenario, axis, value, 'framing')}"]
    polled = "short_poll" in scenario.get("transports", ["short_poll"])
    if polled and not (axis == "poll_interval_ms" and point is None):
        interval = _fmt_value(_setting(scenario, axis, value, "poll_interval_ms"))
        parts.append(f"short poll every {interval} ms")
    if axis == "long_poll_wait_s" and point is not None:
        parts.append(f"long-poll wait {_fmt_value(value)} s")
    if axis is not None:
        values = ", ".join(_fmt_value(p.value) for p in run.points)
        if point is None:
            parts.append(f"sweeping {axis} over {values}")
        else:
            parts.append(f"sweep point {axis} = {_fmt_value(value)} (of {values})")
    return f"{first}\n{' · '.join(parts)}"


def context(subjects: Sequence[Subject], sweep: bool) -> str:
    """The scenario lines of a chart's title; on an overlay, which style marks which run."""
    if len(subjects) == 1:
        only = subjects[0]
        return describe(only.run, None if sweep else only.point)
    runs = ", ".join(
        f"{_tag(subjects, k)}: {s.label} ({_style_name(k)})" for k, s in enumerate(subjects)
    )
    names = sorted({str(s.run.scenario.get("name")) for s in subjects})
    return f"comparing runs {runs}\nscenario {', '.join(names)}"


def _style_name(k: int) -> str:
    return (
        "solid, circles, plain bars",
        "dashed, squares, // bars",
        "dotted, triangles, dotted bars",
        "dash-dot, diamonds, crossed bars",
    )[k % 4]


def _figure(title: str, *, width: float = 10, height: float = 5.8) -> Figure:
    """A figure with the title wrapped to its width (long scenario lines would be cut)."""
    fig = plt.figure(figsize=(width, height), layout="constrained")
    columns = int(width * 9.5)
    fig.suptitle("\n".join(textwrap.fill(line, columns) for line in title.splitlines()))
    return fig


def _tag(subjects: Sequence[Subject], k: int) -> str:
    """A short name for run k on an overlay (A, B, ...), for labels on bars and violins."""
    return "" if len(subjects) == 1 else chr(ord("A") + k % 26)


def _run_label(subjects: Sequence[Subject], k: int, name: str) -> str:
    label = subjects[k].label
    return f"{name} ({label})" if label else name


def transports_of(subjects: Sequence[Subject]) -> list[str]:
    names: dict[str, None] = {}
    for s in subjects:
        names.update(dict.fromkeys(s.phases))
    return list(names)


# --- per-point charts -------------------------------------------------------------------


def _cdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ordered = np.sort(values)
    fraction = np.arange(1, ordered.size + 1) / ordered.size
    if ordered.size > MAX_CDF_POINTS:
        keep = np.unique(np.linspace(0, ordered.size - 1, MAX_CDF_POINTS).astype(int))
        return ordered[keep], fraction[keep]
    return ordered, fraction


def _draw_cdf(ax: Axes, values: np.ndarray, **style: Any) -> None:
    if values.size:
        x, y = _cdf(values)
        ax.step(x, y, where="post", linewidth=2, **style)


def _cdf_axes(ax: Axes, xlabel: str, ylabel: str) -> None:
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")


def ttft_cdf(subjects: Sequence[Subject], title: str) -> Figure:
    """Share of streams (y) whose first token had arrived by a given time after the request
    was scheduled (x, log scale). Further left is faster; a steep curve means a consistent
    time to first token, a long tail to the right means some users wait much longer."""
    fig = _figure(title)
    ax = fig.add_subplot()
    for k, s in enumerate(subjects):
        for name, phase in s.phases.items():
            values = np.asarray(
                [v for r in phase.requests if (v := metrics.ttft_ms(r)) is not None]
            )
            _draw_cdf(
                ax,
                np.maximum(values, LOG_FLOOR_MS),
                color=color(name),
                linestyle=LINESTYLES[k % 4],
                label=_run_label(subjects, k, name),
            )
    _cdf_axes(ax, "time to first token (ms, log scale)", "fraction of streams")
    return fig


def _added_delays(phase: PhaseRecord) -> np.ndarray:
    values = np.asarray([d for r in phase.requests for d in metrics.added_delay_ms(r)])
    return np.maximum(values, LOG_FLOOR_MS)


def added_delay(subjects: Sequence[Subject], title: str) -> Figure:
    """How long each token waited between the server emitting it and the client receiving
    it (log scale), one violin per transport: its width shows how common each delay is, the
    solid bar marks the median (p50) and the dashed bar the 99th percentile. Push transports
    add well under a millisecond; polling adds up to a poll interval."""
    fig = _figure(title)
    ax = fig.add_subplot()
    names = transports_of(subjects)
    width = 0.8 / len(subjects)
    for k, s in enumerate(subjects):
        for pos, name in enumerate(names, start=1):
            if name not in s.phases:
                continue
            values = _added_delays(s.phases[name])
            if values.size == 0:
                continue
            x = pos - 0.4 + width * (k + 0.5)
            parts = ax.violinplot([values], positions=[x], showextrema=False, widths=width)
            for body in parts["bodies"]:  # type: ignore[attr-defined]
                body.set_facecolor(color(name))
                body.set_edgecolor(color(name))
                body.set_alpha(0.45)
                body.set_hatch(HATCHES[k % 4])
            p50, p99 = np.percentile(values, [50, 99])
            half = width * 0.4
            ax.plot([x - half, x + half], [p50, p50], color=color(name), linewidth=2.5)
            ax.plot([x - half, x + half], [p99, p99], color=color(name), linestyle="--")
            note = f"p50 {_short(p50)}\np99 {_short(p99)}"
            if _tag(subjects, k):
                note = f"{_tag(subjects, k)}\n{note}"
            ax.annotate(note, (x + half, p50), fontsize=9, va="center")
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_xlim(0.5, len(names) + 0.7)
    ax.set_yscale("log")
    ax.set_ylabel("added delay per token (ms, log scale)\nclient receive − server emit")
    ax.set_xlabel("transport (solid bar p50, dashed bar p99; values in ms)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    if len(subjects) > 1:
        ax.legend(
            handles=[
                Patch(
                    facecolor="#bbbbbb",
                    hatch=HATCHES[k % 4],
                    label=f"{_tag(subjects, k)}: {s.label}",
                )
                for k, s in enumerate(subjects)
            ],
            loc="upper right",
        )
    return fig


def _short(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def source_gaps_ms(phases: dict[str, PhaseRecord]) -> np.ndarray:
    """The source's own inter-token gaps: differences of consecutive server emit stamps,
    pooled over every stream of every transport."""
    gaps: list[float] = []
    for phase in phases.values():
        for record in phase.requests:
            emits = sorted(e for e in record.emit_ns if e is not None)
            gaps.extend(np.diff(np.asarray(emits, dtype=np.int64)) / metrics.NS_PER_MS)
    return np.asarray(gaps)


def itl_cdf(subjects: Sequence[Subject], title: str) -> Figure:
    """Gaps between consecutive token arrivals (x, log scale) as a cumulative share (y), per
    transport, next to the gaps at which the source emitted them (black). A transport that
    keeps the model's rhythm lies on the source's curve; polling bunches tokens into few
    responses, so many gaps are near zero and the rest are a poll interval long."""
    fig = _figure(title)
    ax = fig.add_subplot()
    for k, s in enumerate(subjects):
        style = LINESTYLES[k % 4]
        _draw_cdf(
            ax,
            np.maximum(source_gaps_ms(s.phases), GAP_FLOOR_MS),
            color=SOURCE_COLOR,
            linestyle=style,
            label=_run_label(subjects, k, "source (server emit gaps)"),
        )
        for name, phase in s.phases.items():
            gaps = np.asarray([g for r in phase.requests for g in metrics.itl_ms(r)])
            _draw_cdf(
                ax,
                np.maximum(gaps, GAP_FLOOR_MS),
                color=color(name),
                linestyle=style,
                label=_run_label(subjects, k, name),
                alpha=0.85,
            )
    _cdf_axes(
        ax,
        "gap between consecutive tokens (ms, log scale; gaps under 10 µs drawn at 10 µs)",
        "fraction of gaps",
    )
    ax.legend(loc="center left")
    return fig


def race_index(phases: dict[str, PhaseRecord]) -> int | None:
    """The representative request: among requests every transport completed without error,
    the one whose source timeline (last emit - scheduled send) is the median."""
    complete: dict[int, list[float]] = {}
    for phase in phases.values():
        for record in phase.requests:
            emits = [e for e in record.emit_ns if e is not None]
            if record.error_kind is None and emits:
                complete.setdefault(record.index, []).append(
                    (max(emits) - record.scheduled_ns) / metrics.NS_PER_MS
                )
    candidates = {k: float(np.median(v)) for k, v in complete.items() if len(v) == len(phases)}
    if not candidates:
        return None
    middle = float(np.median(list(candidates.values())))
    return min(candidates, key=lambda k: (abs(candidates[k] - middle), k))


def _record(phase: PhaseRecord, index: int) -> RequestRecord | None:
    return next((r for r in phase.requests if r.index == index), None)


def race(subjects: Sequence[Subject], title: str) -> Figure:
    """One representative request (the same seed, so the same text and source timing on
    every transport): cumulative tokens received (y) against time since the request was
    scheduled (x). The black line is the source emitting them (median over transports); a
    curve hugging it adds nothing, a staircase is polling delivering tokens in batches. A
    cross marks the terminal message."""
    index = race_index(subjects[0].phases)
    fig = _figure(title + ("" if index is None else f"\nrequest #{index}"))
    ax = fig.add_subplot()
    for k, s in enumerate(subjects):
        style = LINESTYLES[k % 4]
        emit_offsets: dict[int, list[float]] = {}
        for name, phase in s.phases.items():
            record = None if index is None else _record(phase, index)
            if record is None or not record.recv_ns:
                continue
            for i, emit in zip(record.token_index, record.emit_ns, strict=True):
                if emit is not None:
                    emit_offsets.setdefault(i, []).append(
                        (emit - record.scheduled_ns) / metrics.NS_PER_MS
                    )
            times = (np.asarray(record.recv_ns, dtype=np.int64) - record.scheduled_ns) / 1e6
            counts = np.arange(1, times.size + 1)
            ax.step(
                np.concatenate(([0.0], times)),
                np.concatenate(([0], counts)),
                where="post",
                color=color(name),
                linestyle=style,
                linewidth=2,
                label=_run_label(subjects, k, name),
            )
            if record.end_ns is not None:
                end = (record.end_ns - record.scheduled_ns) / metrics.NS_PER_MS
                ax.plot([end], [counts[-1]], marker="x", color=color(name), markersize=9)
        if emit_offsets:
            source = np.sort([float(np.median(v)) for v in emit_offsets.values()])
            ax.step(
                np.concatenate(([0.0], source)),
                np.arange(0, source.size + 1),
                where="post",
                color=SOURCE_COLOR,
                linestyle=style,
                linewidth=1.2,
                label=_run_label(subjects, k, "source (server emit)"),
            )
    ax.set_xlabel("time since the request was scheduled (ms)")
    ax.set_ylabel("tokens received (cumulative)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def _bar_slots(count: int) -> Iterator[tuple[int, float, float]]:
    """Side-by-side bars within one group: (k, offset from the group centre, width)."""
    width = 0.8 / count
    for k in range(count):
        yield k, -0.4 + width * (k + 0.5), width


def cost(subjects: Sequence[Subject], title: str) -> Figure:
    """Left: bytes on the wire per token received (both directions), stacked: the tokens'
    own UTF-8 text (payload), HTTP request and response heads, and the rest (framing,
    envelopes, request bodies, WebSocket frame headers). Right: HTTP requests (or WebSocket
    upgrades) per stream, log scale: push transports need one, polling one per poll."""
    fig = _figure(title, width=11)
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
            note = f"{summary.wire_bytes_per_token:.0f}"
            left.annotate(
                f"{_tag(subjects, k)}\n{note}" if _tag(subjects, k) else note,
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
    fig = _figure(title)
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
                note = f"{value:.0f}"
                if _tag(subjects, k):
                    note = f"{_tag(subjects, k)}\n{note}"
                ax.annotate(
                    note, (pos + offset, value), ha="center", va="bottom", fontsize=8 + (k == 0)
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


# --- sweep charts -----------------------------------------------------------------------


def _numeric(points: Sequence[Point]) -> bool:
    return all(isinstance(p.value, int | float) for p in points)


def _series(
    run: RunResult, name: str, value: Callable[[TransportSummary], float | None]
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) over a sweep's points for one transport, skipping points without a value."""
    xs, ys = [], []
    for point in run.points:
        summary = point.summaries.get(name)
        y = None if summary is None else value(summary)
        if y is not None and isinstance(point.value, int | float):
            xs.append(float(point.value))
            ys.append(y)
    return np.asarray(xs), np.asarray(ys)


def _log_axes(
    ax: Axes,
    xlabel: str,
    ylabel: str,
    ticks: Sequence[float] | None = None,
    yticks: Sequence[float] | None = None,
) -> None:
    """Log-log axes; given `ticks` / `yticks`, exactly those are labelled (plain numbers)."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ticks is not None:
        ax.set_xticks(list(ticks), [_fmt_value(round(t, 1)) for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
    if yticks is not None:
        ax.set_yticks(list(yticks), [_fmt_value(round(t, 1)) for t in yticks])
        ax.yaxis.set_minor_locator(NullLocator())
    ax.grid(True, which="both", alpha=0.3)


def concurrency_latency(subjects: Sequence[Subject], title: str) -> Figure:
    """How latency holds up under load: time to first token (left) and transport-added delay
    per token (right) against the number of streams in flight, both axes log scale; solid
    lines are medians (p50), dashed lines the 99th percentile. Flat lines scale; lines that
    bend upwards mark where the transport (or this machine's two cores) saturates."""
    fig = _figure(title, width=12, height=5.8)
    axes = fig.subplots(1, 2)
    values = sorted({float(p.value) for s in subjects for p in s.run.points})  # type: ignore[arg-type]
    for ax, key, what in (
        (axes[0], "ttft_ms", "time to first token (ms, log scale)"),
        (axes[1], "added_delay_ms", "added delay per token (ms, log scale)"),
    ):
        for k, s in enumerate(subjects):
            for name in transports_of([s]):
                for stat, style in (("p50", "-"), ("p99", "--")):
                    xs, ys = _series(
                        s.run, name, lambda m, key=key, stat=stat: getattr(getattr(m, key), stat)
                    )
                    ax.plot(
                        xs,
                        np.maximum(ys, LOG_FLOOR_MS),
                        linestyle=style,
                        marker=MARKERS[k % 5],
                        color=color(name),
                        linewidth=2 if stat == "p50" else 1.3,
                        label=_run_label(subjects, k, name) if stat == "p50" else None,
                    )
        _log_axes(ax, "concurrent streams (log scale)", what, values)
    axes[0].legend(loc="upper left", title="solid p50, dashed p99")
    return fig


def stream_rate(run: RunResult) -> float | None:
    """One stream's own token rate at the sweep's lowest concurrency: tokens the source
    emitted / (last emit - scheduled send), over every stream of every transport there."""
    lowest = min(run.points, key=lambda p: float(p.value))  # type: ignore[arg-type]
    tokens, seconds = 0, 0.0
    for phase in lowest.phases.values():
        for record in phase.requests:
            emits = [e for e in record.emit_ns if e is not None]
            if emits:
                tokens += record.source_tokens
                seconds += (max(emits) - record.scheduled_ns) / 1e9
    return tokens / seconds if seconds > 0 else None


def concurrency_throughput(subjects: Sequence[Subject], title: str) -> Figure:
    """Tokens per second delivered to all clients together (y) against the demand (x): the
    streams in flight times one stream's own rate, measured at the lowest concurrency. On
    the dashed diagonal every stream gets its tokens as fast as the source makes them; where
    a line falls below it, the transport (or this machine) cannot keep up."""
    fig = _figure(title, width=10, height=6.2)
    ax = fig.add_subplot()
    seen: list[float] = []
    rates: list[str] = []
    for k, s in enumerate(subjects):
        rate = stream_rate(s.run)
        if rate is None:
            continue
        rates.append(f"{rate:.0f}")
        for n, name in enumerate(transports_of([s])):
            xs, ys = _series(s.run, name, lambda m: m.aggregate_tokens_per_s)
            demand = xs * rate
            ax.plot(
                demand,
                ys,
                marker=MARKERS[k % 5],
                linestyle=LINESTYLES[k % 4],
                color=color(name),
                linewidth=2,
                label=_run_label(subjects, k, name),
            )
            seen.extend(demand)
            seen.extend(ys)
            if k == 0 and n == 0:
                for x, c in zip(demand, xs, strict=True):
                    ax.annotate(
                        f"{_fmt_value(c)} stream{'' if c == 1 else 's'}",
                        (x, x),
                        textcoords="offset points",
                        xytext=(-8, 8),
                        ha="right",
                        fontsize=9,
                        color="#555555",
                    )
    positive = [v for v in seen if v > 0]
    if positive:
        low, high = min(positive) / 2, max(positive) * 2
        ax.plot([low, high], [low, high], color="#888888", linestyle="--", label="demand met")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
    _log_axes(
        ax,
        f"demand: streams in flight × one stream's rate ({' / '.join(rates)} tok/s), tok/s",
        "tokens per second delivered, all streams (log scale)",
    )
    ax.legend(loc="upper left")
    return fig


def requests_per_s_per_stream(phase: PhaseRecord) -> float | None:
    """HTTP requests per second of a stream's life (requests / E2E), mean over streams."""
    rates = [
        r.requests / (e2e / 1000)
        for r in phase.requests
        if (e2e := metrics.e2e_ms(r)) is not None and e2e > 0
    ]
    return float(np.mean(rates)) if rates else None


POLLED = "short_poll"


def _poll_series(run: RunResult, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    intervals, rates, delays = [], [], []
    for point in run.points:
        phase, summary = point.phases.get(name), point.summaries.get(name)
        if phase is None or summary is None:
            continue
        rate, delay = requests_per_s_per_stream(phase), summary.added_delay_ms.mean
        if rate is not None and delay is not None and isinstance(point.value, int | float):
            intervals.append(float(point.value))
            rates.append(rate)
            delays.append(delay)
    return np.asarray(intervals), np.asarray(rates), np.asarray(delays)


def poll_interval(subjects: Sequence[Subject], title: str) -> Figure:
    """Top: the trade-off every polling user faces. Mean added delay per token against HTTP
    requests per second per stream, both log scale; each short-polling point is labelled with
    its interval, and the dotted line is the theory (delay = half the interval =
    1 / (2 × request rate)). The other transports do not depend on the interval: each is
    drawn once, at its median over the sweep, as a reference. Bottom: short polling's mean
    added delay follows half the interval (left) and its request rate follows 1 / interval
    (right)."""
    fig = _figure(title, width=11, height=10)
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 2])
    top = fig.add_subplot(grid[0, :])
    delay_ax, rate_ax = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    all_rates: list[float] = []
    references: list[tuple[float, float, str]] = []
    for k, s in enumerate(subjects):
        marker, style = MARKERS[k % 5], LINESTYLES[k % 4]
        for name in transports_of([s]):
            intervals, rates, delays = _poll_series(s.run, name)
            if intervals.size == 0:
                continue
            all_rates.extend(rates)
            if name != POLLED:
                x, y = float(np.median(rates)), float(np.median(delays))
                top.plot(
                    [x],
                    [y],
                    marker=marker,
                    markersize=11,
                    linestyle="none",
                    color=color(name),
                    label=_run_label(subjects, k, f"{name} (reference)"),
                )
                references.append((y, x, name))
                continue
            label = _run_label(subjects, k, name)
            top.plot(
                rates,
                delays,
                marker=marker,
                linestyle=style,
                linewidth=2,
                markersize=8,
                color=color(name),
                label=label,
            )
            for x, y, interval in zip(rates, delays, intervals, strict=True):
                top.annotate(
                    f"{_fmt_value(interval)} ms",
                    (x, y),
                    textcoords="offset points",
                    xytext=(6, 6),
                    fontsize=9,
                    color=color(name),
                )
            delay_ax.plot(
                intervals,
                delays,
                marker=marker,
                linestyle=style,
                linewidth=2,
                color=color(name),
                label=label,
            )
            rate_ax.plot(
                intervals,
                rates,
                marker=marker,
                linestyle=style,
                linewidth=2,
                color=color(name),
                label=label,
            )
    for j, (y, x, name) in enumerate(sorted(references)):  # fanned out: they often cluster
        top.annotate(
            name,
            (x, y),
            textcoords="offset points",
            xytext=(22, 16 * (j - (len(references) - 1) / 2)),
            va="center",
            fontsize=10,
            color=color(name),
            arrowprops={"arrowstyle": "-", "color": color(name), "linewidth": 0.8},
        )
    intervals = np.asarray(sorted({float(p.value) for s in subjects for p in s.run.points}))  # type: ignore[arg-type]
    if all_rates:
        r = np.geomspace(min(all_rates) / 1.5, max(all_rates) * 1.5, 50)
        top.plot(r, 1000 / (2 * r), color="#888888", linestyle=":", label="theory: 1 / (2 × rate)")
    delay_ax.plot(intervals, intervals / 2, color="#888888", linestyle=":", label="interval / 2")
    rate_ax.plot(intervals, 1000 / intervals, color="#888888", linestyle=":", label="1 / interval")
    _log_axes(
        top,
        "HTTP requests per second per stream (log scale)",
        "mean added delay per token (ms, log scale)",
    )
    top.legend(loc="upper right")
    _log_axes(
        delay_ax,
        "poll interval (ms, log scale)",
        "mean added delay (ms, log scale)",
        intervals,
        intervals / 2,
    )
    _log_axes(
        rate_ax,
        "poll interval (ms, log scale)",
        "requests/s per stream (log scale)",
        intervals,
        1000 / intervals,
    )
    delay_ax.legend(loc="upper left")
    rate_ax.legend(loc="upper right")
    return fig


CHARTS: dict[str, Chart] = {
    chart.stem: chart
    for chart in (
        Chart("ttft_cdf", "Time to first token (CDF)", ttft_cdf),
        Chart("added_delay", "Transport-added delay per token", added_delay),
        Chart("itl_cdf", "Inter-token gaps (CDF), transports vs the source", itl_cdf),
        Chart("race", "Race: one request's tokens arriving over time", race),
        Chart("cost", "Cost per token: bytes on the wire and HTTP requests", cost),
        Chart("cpu", "CPU per 1,000 tokens, server and client", cpu),
        Chart(
            "sweep_concurrency_latency",
            "Latency against concurrent streams",
            concurrency_latency,
            "concurrency",
        ),
        Chart(
            "sweep_concurrency_throughput",
            "Delivered tokens per second against demand",
            concurrency_throughput,
            "concurrency",
        ),
        Chart(
            "sweep_poll_interval",
            "Polling trade-off: added delay against requests per second",
            poll_interval,
            "poll_interval_ms",
        ),
    )
}


def charts_for(runs: Sequence[RunResult]) -> list[Chart]:
    """The charts that apply: every per-point chart, and the sweep charts of a shared axis."""
    return [chart for chart in CHARTS.values() if chart.applies_to(runs)]


def _save(fig: Figure, out_dir: Path, stem: str) -> tuple[Path, Path]:
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    fig.savefig(png, dpi=PNG_DPI)
    fig.set_layout_engine("none")  # the SVG keeps the PNG's layout instead of solving it again
    fig.savefig(svg)
    plt.close(fig)
    return png, svg


def draw(chart: Chart, subjects: Sequence[Subject], out_dir: Path) -> DrawnChart:
    with matplotlib.rc_context(STYLE):
        title = f"{chart.title}\n{context(subjects, sweep=chart.sweep_axis is not None)}"
        png, svg = _save(chart.draw(subjects, title), out_dir, chart.stem)
    return DrawnChart(chart.stem, chart.title, chart.caption, png, svg)


def draw_charts(subjects: Sequence[Subject], out_dir: Path) -> list[DrawnChart]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [draw(chart, subjects, out_dir) for chart in charts_for([s.run for s in subjects])]


def draw_run(run: RunResult, out_dir: Path) -> list[DrawnChart]:
    """Every chart that applies to one run, written to `out_dir` as PNG and SVG."""
    return draw_charts([subject(run)], out_dir)


def draw_all(run: RunResult, out_dir: Path) -> list[Path]:
    return [path for drawn in draw_run(run, out_dir) for path in (drawn.png, drawn.svg)]
