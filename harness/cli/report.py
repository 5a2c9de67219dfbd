"""`bench.py report`: (re)write a run folder's charts and its one-file HTML report."""

from __future__ import annotations

import argparse

from harness.cli.common import add_run_dirs

NAME = "report"
HELP = "write RUN_DIR/report.html (charts embedded) from a run's saved results"
DESCRIPTION = (
    "Read RUN_DIR/results.json, redraw every chart into RUN_DIR (PNG and SVG) and write "
    "RUN_DIR/report.html: one self-contained file with the scenario and environment, the "
    "verdict table, every chart and the metric definitions. Opens without a network."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_dirs(parser, "a run folder", several=False)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.present.report import load_run_dir, write_report

    run_dir, results = load_run_dir(args.run_dir)
    print(write_report(results, run_dir))
    return 0
