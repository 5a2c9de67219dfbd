"""`bench.py compare`: one HTML report comparing several saved runs."""

from __future__ import annotations

import argparse

from errors import UsageError
from harness.cli.common import add_out, add_run_dirs

NAME = "compare"
HELP = "compare saved runs (e.g. before/after a change) in one HTML report"
DESCRIPTION = (
    "Read each RUN_DIR's results.json and write compare.html with, per transport, every "
    "verdict metric of each run, its difference from the first run (the baseline) and the "
    "ratio to it, and the charts with the runs overlaid. Opens without a network."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_dirs(parser, "run folders; the first is the baseline")
    add_out(parser, "folder for compare.html and its charts (default: results/<UTC time>-compare/)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.analyse.compare import default_out_dir, write_comparison
    from harness.present.report import load_run_dir

    if len(args.run_dirs) < 2:
        raise UsageError("compare needs at least two run folders (RUN_A RUN_B [...])")
    runs = [load_run_dir(path) for path in args.run_dirs]
    print(write_comparison(runs, args.out or default_out_dir()))
    return 0
