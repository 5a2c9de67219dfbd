"""Charts, drawn from saved results only (`harness.results.load_run`).

Each transport keeps one colour across every chart; every chart's title names the scenario.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from harness import metrics
from harness.results import RunResult

COLORS = {
    "short_poll": "#d62728",
    "long_poll": "#ff7f0e",
    "sse": "#1f77b4",
    "chunked": "#2ca02c",
    "websocket": "#9467bd",
    "direct": "#7f7f7f",
}
FORMATS = ("png", "svg")


def color(transport: str) -> str:
    return COLORS.get(transport, "#17becf")


def _title(run: RunResult, what: str) -> str:
    scenario = run.scenario
    source = scenario.get("source", {})
    return (
        f"{what}\nscenario {scenario.get('name')}: preset {source.get('preset')}, "
        f"{scenario.get('requests')} streams x concurrency {scenario.get('concurrency')}, "
        f"framing {scenario.get('framing')}"
    )


def _save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    paths = []
    for fmt in FORMATS:
        path = out_dir / f"{stem}.{fmt}"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def ttft_cdf(run: RunResult, out_dir: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, phase in run.phases.items():
        values = np.sort([v for r in phase.requests if (v := metrics.ttft_ms(r)) is not None])
        if values.size == 0:
            continue
        ax.step(
            values,
            np.arange(1, values.size + 1) / values.size,
            where="post",
            color=color(name),
            label=name,
            linewidth=2,
        )
    ax.set_xscale("log")
    ax.set_xlabel("time to first token (ms, log scale)")
    ax.set_ylabel("fraction of streams")
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(_title(run, "Time to first token (CDF)"), fontsize=11)
    return _save(fig, out_dir, "ttft_cdf")


def added_delay(run: RunResult, out_dir: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(9, 5.5))
    names, samples = [], []
    for name, phase in run.phases.items():
        values = np.asarray([d for r in phase.requests for d in metrics.added_delay_ms(r)])
        if values.size:
            names.append(name)
            samples.append(np.maximum(values, 1e-3))  # log axis: clamp to 1 microsecond
    if samples:
        parts = ax.violinplot(samples, showextrema=False, widths=0.8)
        for body, name in zip(parts["bodies"], names, strict=True):  # type: ignore[arg-type]
            body.set_facecolor(color(name))
            body.set_alpha(0.45)
        for pos, (name, values) in enumerate(zip(names, samples, strict=True), start=1):
            p50, p99 = np.percentile(values, [50, 99])
            ax.plot([pos - 0.3, pos + 0.3], [p50, p50], color=color(name), linewidth=2.5)
            ax.plot(
                [pos - 0.2, pos + 0.2], [p99, p99], color=color(name), linewidth=1.5, linestyle="--"
            )
            ax.annotate(f"p50 {p50:.2f}\np99 {p99:.2f}", (pos + 0.32, p50), fontsize=8, va="center")
        ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_yscale("log")
    ax.set_ylabel("added delay per token (ms, log scale)\nclient receive - server emit")
    ax.set_xlabel("transport (solid line p50, dashed line p99)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.set_title(_title(run, "Transport-added delay per token"), fontsize=11)
    return _save(fig, out_dir, "added_delay")


CHARTS: dict[str, Callable[[RunResult, Path], list[Path]]] = {
    "ttft_cdf": ttft_cdf,
    "added_delay": added_delay,
}


def draw_all(run: RunResult, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [path for chart in CHARTS.values() for path in chart(run, out_dir)]
