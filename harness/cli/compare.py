"""`bench.py compare`: one HTML report comparing several saved runs."""

from __future__ import annotations

import argparse

from errors import UsageError
from harness.cli.common import add_out, add_run_dirs

NAME = "compare"
HELP = "compare saved runs (e.g. before/after a change) in one HTML report"
DESCRIPTION = (
    "Read each RUN_DIR's results.json and write compare.html with, per transport, every "
    "verdict metric of each run, its difference from the first run (the baseline), the "
    "ratio to it and whether the difference is beyond noise (improved, regressed, no "
    "change: its 95% interval; Welch's over the rounds when either run was repeated, each "
    "round on a server of its own, else each run's streams resampled, which misses what "
    "varies between runs: compare runs made with --repeat), and the charts with the runs "
    "overlaid; and compare.json with every judged figure. Opens without a network."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_dirs(parser, "run folders; the first is the baseline")
    add_out(parser, "folder for compare.html and its charts (default: results/<UTC time>-compare/)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    import orjson

    from harness.analyse.compare import COMPARE_JSON, default_out_dir, tally, write_comparison
    from harness.present.report import load_run_dir

    if len(args.run_dirs) < 2:
        raise UsageError("compare needs at least two run folders (RUN_A RUN_B [...])")
    runs = [load_run_dir(path) for path in args.run_dirs]
    out = args.out or default_out_dir()
    path = write_comparison(runs, out)
    entries = orjson.loads((out / COMPARE_JSON).read_bytes())
    for run, counts in tally(entries).items():
        told = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
        print(
            f"{run}: {told} (of {sum(counts.values())} figures, beyond noise at a 5% false "
            "discovery rate)"
        )
    if any(e["basis"] == "streams" for e in entries):
        print(
            "note: runs of one round were compared by resampling their streams, which "
            "misses what varies between runs (a server's placement, the machine's minute); "
            "run both with --repeat 3 or more to judge against that"
        )
    print(path)
    return 0
