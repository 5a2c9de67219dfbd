"""`bench.py baseline`: write the baseline that `bench.py check` compares runs with."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from rich.table import Table

from harness.cli.common import DEFAULT_BASELINE, add_out, add_run_dirs

NAME = "baseline"
HELP = "write a regression-check baseline from one or more runs"
DESCRIPTION = (
    "Read RUN_DIR/results.json (several runs of one scenario: the median and range of each "
    "figure over them) and write the baseline `bench.py check` compares with: the scenario, "
    "the environment, and per transport the compared figures. Runs with an [inject] "
    "regression are refused."
)
SHOWN = (
    ("added_delay_p50_ms", "added delay p50 ms"),
    ("added_delay_mean_ms", "added delay mean ms"),
    ("wire_bytes_per_token", "bytes/token"),
    ("requests_per_stream", "requests/stream"),
    ("ttft_p50_ms", "TTFT p50 ms"),
    ("tokens_emitted", "tokens"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_dirs(
        parser,
        "run folder(s) of one scenario, e.g. from `bench.py run --scenario scenarios/ci.toml`",
    )
    add_out(
        parser,
        "where to write it (default: results/baseline.json)",
        metavar="FILE",
        default=DEFAULT_BASELINE,
    )


def _table(path: Path, transports: Mapping[str, Mapping[str, object]], runs: int) -> Table:
    table = Table(
        title=f"baseline {path} (median of {runs} run(s))",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("transport")
    for _, label in SHOWN:
        table.add_column(label, justify="right")
    for name, figures in transports.items():
        cells = []
        for figure, _ in SHOWN:
            stats = figures.get(figure)
            value = getattr(stats, "value", None)
            cells.append("-" if value is None else f"{value:,.3f}".rstrip("0").rstrip("."))
        table.add_row(name, *cells)
    return table


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.ci.baseline import make_baseline, save_baseline
    from harness.cli.check import load_runs
    from harness.present.console import make_console

    runs = load_runs(args.run_dirs)
    baseline = make_baseline(list(zip(args.run_dirs, runs, strict=True)))
    path = save_baseline(baseline, args.out)
    make_console().print(_table(path, dict(baseline.transports), len(runs)))
    return 0
