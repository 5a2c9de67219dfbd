"""What a person sees on the terminal: a progress bar per transport (and one for the whole
run, with its ETA) and the summary table; for scripts, the summaries as JSON."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from harness.analyse.intervals import Interval
from harness.analyse.metrics import Distribution, TransportSummary
from harness.analyse.problems import point_problems, problem_lines
from harness.analyse.results import Point, RunResult
from harness.present.report import FAULTS, number

RUN_TASK = "whole run"


def make_console(*, stderr: bool = False, quiet: bool = False) -> Console:
    """A console for the run. Piped output (CI logs, files) gets a width the summary table
    fits in instead of rich's 80-column default. `stderr` keeps stdout free for machine
    output; `quiet` prints nothing at all."""
    probe = Console(stderr=stderr, quiet=quiet)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, quiet=quiet, width=max(probe.width, 240))


class RichProgress:
    """A `harness.measure.run.context.ProgressSink` drawing one rich progress bar per transport (and
    sweep point) and, given the run's `total` streams, one for the whole run: its ETA is
    the time left for the run, not just for the current phase."""

    def __init__(self, console: Console, total: int | None = None) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.run_task = (
            None if total is None else self.progress.add_task(RUN_TASK, total=total, failed=0)
        )

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def phase_started(self, transport: str, total: int) -> None:
        self.tasks[transport] = self.progress.add_task(transport, total=total, failed=0)

    def stream_done(self, transport: str, failed: bool) -> None:
        for task in (self.tasks[transport], self.run_task):
            if task is None:
                continue
            if failed:
                current = self.progress.tasks[self._position(task)].fields["failed"]
                self.progress.update(task, failed=current + 1)
            self.progress.advance(task)

    def phase_finished(self, transport: str) -> None:
        return None

    def _position(self, task: TaskID) -> int:
        return next(k for k, t in enumerate(self.progress.tasks) if t.id == task)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _pm(text: str, interval: Interval | None, shown: Callable[[float], str]) -> str:
    """`text ±h`: a figure and the half width of its 95% interval (none: the figure alone)."""
    return text if interval is None else f"{text} [dim]±{shown(interval.half_width)}[/dim]"


def _p50_p99(dist: Distribution) -> str:
    """p50 over p99, each with its interval."""
    return f"{_pm(_ms(dist.p50), dist.p50_ci, _ms)}\n{_pm(_ms(dist.p99), dist.p99_ci, _ms)}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _num_pm(value: float | None, interval: Interval | None, digits: int = 1) -> str:
    return _pm(_num(value, digits), interval, lambda h: _num(h, digits))


def _share(ratio: float | None, interval: Interval | None = None) -> str:
    if ratio is None:
        return "-"
    return _pm(f"{ratio * 100:.1f}%", interval, lambda h: f"{h * 100:.1f}")


def _cpu(s: TransportSummary) -> str:
    """Server / client CPU per token (ms per 1,000 tokens is µs per token), ± over the rounds
    of a repeated run; with the raw client's floor from the same run, the client's multiple
    of it."""
    server = _num_pm(s.server_cpu_ms_per_1k_tokens, s.server_cpu_ms_per_1k_tokens_ci, 0)
    client = _num_pm(s.client_cpu_ms_per_1k_tokens, s.client_cpu_ms_per_1k_tokens_ci, 0)
    text = f"{server} / {client}"
    if s.client_vs_raw_cpu is not None:
        text += f" ({s.client_vs_raw_cpu:.2f}x raw)"
    return text


def summary_table(summaries: dict[str, TransportSummary], title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in (
        "transport",
        "TTFT ms\np50, p99",
        "ITL ms\np50, p99",
        "added delay ms\np50, p99",
        "added ms\nmean",
        "E2E ms\np50",
        "tok/s\nstream",
        "tok/s\nall",
        "steady\n% demand",
        "src gap ms\np99",
        "bytes\n/token",
        "requests\n/stream",
        "empty\npolls",
        "CPU µs/token\nserver / client",
        "tokens\nemit / recv",
        "lost / dup\n/ errors",
    ):
        table.add_column(column, justify="left" if column == "transport" else "right")
    for name, s in summaries.items():
        bad = s.tokens_lost or s.tokens_duplicated or s.errors or s.text_mismatches
        table.add_row(
            name,
            _p50_p99(s.ttft_ms),
            _p50_p99(s.itl_ms),
            _p50_p99(s.added_delay_ms),
            _pm(_ms(s.added_delay_ms.mean), s.added_delay_ms.mean_ci, _ms),
            _pm(_ms(s.e2e_ms.p50), s.e2e_ms.p50_ci, _ms),
            _num_pm(s.tokens_per_s, s.tokens_per_s_ci),
            _num_pm(s.aggregate_tokens_per_s, s.aggregate_tokens_per_s_ci),
            _share(s.delivered_ratio, s.delivered_ratio_ci),
            _pm(_ms(s.source_gap_error_ms.p99), s.source_gap_error_ms.p99_ci, _ms),
            _num_pm(s.wire_bytes_per_token, s.wire_bytes_per_token_ci),
            _num_pm(s.requests_per_stream, s.requests_per_stream_ci),
            str(s.empty_polls),
            _cpu(s),
            f"{s.tokens_emitted} / {s.tokens_received}",
            f"[{'red' if bad else 'green'}]{s.tokens_lost} / {s.tokens_duplicated} / {s.errors}",
        )
    return table


def faults_table(summaries: dict[str, TransportSummary], title: str) -> Table:
    """The fault benchmark's figures (`harness.present.report.FAULTS`), one row a transport."""
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("transport", justify="left")
    for column in FAULTS:
        unit = f" {column.unit}" if column.unit else ""
        table.add_column(f"{column.header}{unit}", justify="right")
    for name, s in summaries.items():
        table.add_row(name, *(number(column.value(s)) for column in FAULTS))
    return table


def problems_text(point: Point, where: str = "") -> str | None:
    """A live upstream's problems at one point (`harness.analyse.problems`), one line per
    code and its fix; None when there were none."""
    rows = point_problems(point)
    if not rows:
        return None
    title = f"upstream problems{where} (the codes of `bench.py probe`, wire/problems.py):"
    return "\n".join([title, *problem_lines(rows)])


def browser_text(point: Point, where: str = "") -> str | None:
    """The browser client's first token on screen after its network arrival (p50, p99 over
    the streams); None when no phase rendered in a browser."""
    parts = []
    for name, phase in point.phases.items():
        rendered = phase.browser.first_render_after_network_ms if phase.browser else None
        if rendered and rendered.get("n"):
            parts.append(
                f"{name} p50 {rendered['p50']:.1f} ms, p99 {rendered['p99']:.1f} ms "
                f"({rendered['n']} streams)"
            )
    if not parts:
        return None
    return f"browser{where}: token 0 on screen after its network arrival: " + "; ".join(parts)


def summaries_json(run: RunResult) -> dict[str, Any]:
    """The summaries of a run for scripts (`bench.py run --json`): a plain run's
    `transports.<name>`, or a sweep's `sweep.axis` and `points[k].{value, transports}`."""
    data: dict[str, Any] = {"scenario": run.scenario.get("name")}

    def transports(summaries: dict[str, TransportSummary]) -> dict[str, Any]:
        return {name: summary.to_json() for name, summary in summaries.items()}

    if run.is_sweep:
        data["sweep"] = {"axis": run.sweep_axis, "values": [p.value for p in run.points]}
        data["points"] = [
            {
                "value": p.value,
                "transports": transports(p.summaries),
                "problems": [row.to_json() for row in point_problems(p)],
            }
            for p in run.points
        ]
    else:
        data["transports"] = transports(run.summaries)
        data["problems"] = [row.to_json() for row in point_problems(run.points[0])]
    return data
