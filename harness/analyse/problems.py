"""A live upstream's problems, gathered from a run's raw records (`RequestRecord.problems`,
recorded by the relay's source and by `direct` with the codes of `wire.problems`, the ones
`bench.py probe` reports), for the console, `--json` and the report; and the failure of a
live run whose upstream produced no token at all.

A code is a `problem` when it failed at least one stream, else a `warning` (a `buffered`
upstream still answers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from errors import UpstreamProblem, UpstreamUnavailable
from harness.analyse.results import Point, RunResult
from harness.measure.records import RequestRecord
from wire.problems import RULES, Severity


@dataclass
class ProblemRow:
    """One code over one point of a run: which streams showed it, the first one's message."""

    code: str
    severity: str
    message: str
    streams: dict[str, int] = field(default_factory=dict)  # transport -> streams showing it
    of: dict[str, int] = field(default_factory=dict)  # transport -> its streams

    @property
    def fix(self) -> str:
        rule = RULES.get(self.code)
        return rule.fix if rule is not None else ""

    def where(self) -> str:
        """`sse 2/2, direct 2/2 streams`."""
        parts = [f"{name} {n}/{self.of[name]}" for name, n in self.streams.items()]
        return ", ".join(parts) + " streams"

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "streams": dict(self.streams),
        }


def point_problems(point: Point) -> list[ProblemRow]:
    """Each code once, problems first, then in the order the transports met them."""
    rows: dict[str, ProblemRow] = {}
    for name, phase in point.phases.items():
        for record in phase.requests:
            shown: dict[str, ProblemRow] = {}
            for problem in record.problems:
                code = problem["code"]
                row = rows.setdefault(
                    code, ProblemRow(code, Severity.WARNING.value, problem.get("message", ""))
                )
                if problem.get("severity") == Severity.PROBLEM:
                    row.severity = Severity.PROBLEM.value
                shown[code] = row
            for row in shown.values():
                row.streams[name] = row.streams.get(name, 0) + 1
    for row in rows.values():
        row.of = {name: len(point.phases[name].requests) for name in row.streams}
    return sorted(rows.values(), key=lambda r: r.severity != Severity.PROBLEM)


def problem_lines(rows: Iterable[ProblemRow]) -> list[str]:
    """The console's lines: one per code, and its fix below."""
    lines = []
    for row in rows:
        lines.append(f"  {row.severity:<8} {row.code:<15} {row.where()}: {row.message}")
        if row.fix:
            lines.append(f"  {'':<8} {'':<15} fix: {row.fix}")
    return lines


def _records(run: RunResult) -> list[tuple[str, RequestRecord]]:
    return [
        (name, record)
        for point in run.points
        for name, phase in point.phases.items()
        for record in phase.requests
    ]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def no_tokens_failure(run: RunResult, run_dir: Path) -> UpstreamUnavailable | None:
    """For a live run (`--source openai`) whose upstream produced no token in any measured
    stream, the error to exit with (one line): an `UpstreamProblem` naming the code most
    streams showed, or, when none was classified, an `UpstreamUnavailable` with the first
    stream error. None for any other run."""
    if (run.scenario.get("source") or {}).get("kind") != "openai":
        return None
    records = _records(run)
    if not records or any(record.token_index for _, record in records):
        return None
    per_transport = Counter(name for name, _ in records)
    counts = ", ".join(f"{name} {n}" for name, n in per_transport.items())
    what = f"the live upstream produced no token in any of the {len(records)} streams ({counts})"
    codes = Counter(p["code"] for _, r in records for p in r.problems)
    if codes:
        code = codes.most_common(1)[0][0]
        message = next(p["message"] for _, r in records for p in r.problems if p["code"] == code)
        fix = RULES[code].fix if code in RULES else ""
        detail = f"{what}: {message}" + (f"; fix: {fix}" if fix else "") + f"; results in {run_dir}"
        return UpstreamProblem(code, _one_line(detail))
    error = next((r for _, r in records if r.error_message), None)
    why = f"{error.error_kind}: {error.error_message}" if error else "every answer was empty"
    return UpstreamUnavailable(_one_line(f"{what}: {why}; results in {run_dir}"))
