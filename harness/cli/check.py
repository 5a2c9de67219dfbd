"""`bench.py check`: compare a run with the committed baseline; exit 1 on a regression."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from errors import UsageError
from harness.analyse.results import RunResult
from harness.ci.check import DEFAULT_RERUNS, MAX_RERUNS, Finding, Rerun, Verdict
from harness.cli.common import DEFAULT_BASELINE, add_run_dirs, count_up_to

NAME = "check"
HELP = "compare a run with the committed baseline; exit 1 on a regression"
DESCRIPTION = (
    "Compare RUN_DIR (a run of the baseline's scenario, e.g. scenarios/ci.toml) with a "
    "baseline from `bench.py baseline`. Exact figures (lost or duplicated tokens, errors, "
    "bytes and requests of one-request transports) fail at once; timing figures fail only "
    "if they are still beyond tolerance in the median over re-runs of the same scenario. "
    "Exit 0: no regression; 1: a regression (the table names each one); 2: bad input. "
    "The statistics are described in harness/ci/check.py."
)
_reruns = count_up_to(MAX_RERUNS, "must be 0..{maximum}, got {value}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_dirs(
        parser, "a run folder; several runs of the same scenario are compared as repetitions"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=DEFAULT_BASELINE,
        metavar="FILE",
        help="the baseline JSON (default: results/baseline.json)",
    )
    parser.add_argument(
        "--reruns",
        type=_reruns,
        default=DEFAULT_RERUNS,
        metavar="N",
        help="when a timing figure is beyond tolerance, repeat the run's scenario up to N "
        f"times (0..{MAX_RERUNS}, default {DEFAULT_RERUNS}) into RUN_DIR/rerun-K and compare "
        "the median over all runs",
    )


def load_runs(run_dirs: Sequence[Path]) -> list[RunResult]:
    from harness.analyse.results import load_run

    runs = []
    for run_dir in run_dirs:
        if not run_dir.exists():
            raise UsageError(f"run folder {run_dir} does not exist")
        runs.append(load_run(run_dir))
    return runs


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "" and float(value).is_integer():
        return f"{int(value):,}"
    digits = 1 if abs(value) >= 100 else 2 if abs(value) >= 10 else 3
    suffix = "x" if unit == "x" else f" {unit}" if unit else ""
    return f"{value:,.{digits}f}{suffix}"


def _change(finding: Finding) -> str:
    if finding.change is None:
        return "no value"
    text = _number(finding.change, finding.rule.unit)
    text = text if text.startswith("-") else f"+{text}"
    ratio = finding.change_ratio
    return text if ratio is None else f"{text} ({ratio:+.0%})"


def _interval(finding: Finding) -> str:
    if finding.interval is None:
        return "-"
    unit = finding.rule.unit
    return f"[{_number(finding.interval.lo, unit)}, {_number(finding.interval.hi, unit)}]"


def _kind(finding: Finding, runs: int) -> str:
    if finding.rule.kind == "exact":
        return "exact" if runs == 1 else f"exact, worst of {runs} runs"
    return "timing" if runs == 1 else f"timing, median of {runs} runs"


def regression_table(verdict: Verdict) -> Table:
    regressions = verdict.regressions
    table = Table(
        title=f"[bold red]regression check failed[/]: {len(regressions)} figure(s) beyond "
        f"tolerance (of {len(verdict.findings)} compared, {verdict.runs} run(s))",
        title_justify="left",
        caption="tolerance: the largest rise allowed (range: the spread of the baseline's own "
        "runs). Exact figures: the worst run; timing figures: the median over all runs, "
        "and the change's 95% interval over the rounds of both sides excludes 0.",
        caption_justify="left",
        header_style="bold",
    )
    for column in (
        "transport",
        "metric",
        "kind",
        "baseline",
        "current",
        "change",
        "tolerance",
        "95% interval",
        "per run",
    ):
        table.add_column(column, justify="left" if column in ("transport", "metric") else "right")
    for f in regressions:
        unit = f.rule.unit
        table.add_row(
            f.transport,
            f"[red]{f.rule.label}",
            _kind(f, verdict.runs),
            _number(f.baseline.value, unit),
            f"[red]{_number(f.current, unit)}",
            _change(f),
            f.rule.tolerance_text(),
            _interval(f),
            ", ".join(_number(v, unit) for v in f.values),
        )
    return table


def _pair(findings: dict[str, Finding], figure: str) -> str:
    found = findings.get(figure)
    if found is None:
        return "-"
    unit = found.rule.unit
    return f"{_number(found.baseline.value, unit)} -> {_number(found.current, unit)}"


def all_clear_table(verdict: Verdict) -> Table:
    table = Table(
        title=f"[bold green]regression check passed[/]: {len(verdict.findings)} figures "
        f"within tolerance ({verdict.runs} run(s); baseline -> now)",
        title_justify="left",
        header_style="bold",
    )
    for column in ("transport", "figures", "added delay", "bytes/token", "TTFT p50", "status"):
        table.add_column(column, justify="left" if column == "transport" else "right")
    transports = dict.fromkeys(f.transport for f in verdict.findings)
    for name in transports:
        mine = {f.rule.figure: f for f in verdict.findings if f.transport == name}
        delay = "added_delay_p50_ms" if "added_delay_p50_ms" in mine else "added_delay_mean_ms"
        label = "p50 " if delay == "added_delay_p50_ms" else "mean "
        table.add_row(
            name,
            str(len(mine)),
            label + _pair(mine, delay),
            _pair(mine, "wire_bytes_per_token"),
            _pair(mine, "ttft_p50_ms"),
            "[green]ok",
        )
    return table


def print_verdict(verdict: Verdict, console: Console) -> None:
    console.print(all_clear_table(verdict) if verdict.passed else regression_table(verdict))
    if verdict.exact_regressions and verdict.timing_regressions and verdict.runs == 1:
        console.print(
            "the timing rows come from this one run, not confirmed by re-runs: the exact "
            "regressions fail the check already",
            highlight=False,
        )
    noise = [
        f"{f.transport} {f.rule.label} ({_change(f)}, {_interval(f)})" for f in verdict.within_noise
    ]
    if noise:
        console.print(
            f"beyond tolerance but within the noise between rounds (the change's 95% interval "
            f"holds 0), so not a regression: {'; '.join(noise)}",
            highlight=False,
        )
    better = [f"{f.transport} {f.rule.label}" for f in verdict.improvements]
    if better:
        console.print(
            f"improved beyond tolerance: {', '.join(better)} "
            "(if this is the new normal, refresh the baseline with `bench.py baseline`)",
            highlight=False,
        )


def _rerunner(runs: list[RunResult], run_dir: Path, max_reruns: int, console: Console) -> Rerun:
    from harness.ci.check import rerun_scenario
    from harness.pipeline import run_scenario

    def rerun(k: int, verdict: Verdict) -> RunResult:
        scenario = rerun_scenario(runs[0].scenario)
        beyond = ", ".join(f"{f.transport} {f.rule.label}" for f in verdict.timing_regressions)
        console.print(
            f"[yellow]timing beyond tolerance[/] ({beyond}); re-running scenario "
            f"{scenario.name} ({k} of at most {max_reruns}) to tell a regression from noise",
            highlight=False,
        )
        out = run_dir / f"rerun-{k}"
        return run_scenario(scenario, out, console, ["check", "rerun", str(k), str(run_dir)])

    return rerun


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.ci.baseline import environment_differences, load_baseline
    from harness.ci.check import check
    from harness.present.console import make_console

    baseline = load_baseline(args.baseline)
    runs = load_runs(args.run_dirs)
    console = make_console()
    for run_dir, run_result in zip(args.run_dirs, runs, strict=True):
        differences = environment_differences(baseline, run_result)
        if differences:
            console.print(
                f"[yellow]note[/]: {run_dir} ran on a different machine than the baseline "
                f"({'; '.join(differences)}); timing figures may not be comparable",
                highlight=False,
            )
    rerun = _rerunner(runs, args.run_dirs[0], args.reruns, console) if args.reruns else None
    verdict = check(baseline, runs, rerun, args.reruns)
    print_verdict(verdict, console)
    return 0 if verdict.passed else 1
