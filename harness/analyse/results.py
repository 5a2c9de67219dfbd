"""Run folders: `results.json` (versioned, with environment metadata and every raw record),
`summary.csv`, and the charts. Analysis reads only what is saved here."""

from __future__ import annotations

import csv
import datetime as dt
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from errors import ResultsError
from harness.analyse.metrics import TransportSummary, summarize, ttft_minus_direct_ms
from harness.measure.records import PhaseRecord
from harness.measure.scenario import Scenario
from harness.measure.server_process import PROJECT_ROOT

DIRECT = "direct"  # the live upstream consumed without tokenwire (see clients.direct)

SCHEMA_VERSION = 1
PACKAGES = (
    "tokenwire",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "httpx-sse",
    "websockets",
    "sse-starlette",
    "openai",
    "numpy",
    "orjson",
    "matplotlib",
    "rich",
    "uvloop",
    "httptools",
)


SweepValue = float | int | str


@dataclass
class Point:
    """The transports measured at one point of a run (a plain run has exactly one point;
    a sweep has one per swept value)."""

    value: SweepValue | None
    phases: dict[str, PhaseRecord]
    summaries: dict[str, TransportSummary] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.summaries:
            self.summaries = {name: summarize(phase) for name, phase in self.phases.items()}
        direct = self.phases.get(DIRECT)
        if direct is not None:
            self.summaries = {
                name: replace(
                    s, ttft_minus_direct_ms=ttft_minus_direct_ms(self.phases[name], direct)
                )
                for name, s in self.summaries.items()
            }


@dataclass
class RunResult:
    metadata: dict[str, Any]
    scenario: dict[str, Any]
    points: list[Point]
    sweep_axis: str | None = None

    @property
    def is_sweep(self) -> bool:
        return self.sweep_axis is not None

    @property
    def phases(self) -> dict[str, PhaseRecord]:
        """The phases of a plain run (of a sweep: of its first point)."""
        return self.points[0].phases

    @property
    def summaries(self) -> dict[str, TransportSummary]:
        return self.points[0].summaries

    @classmethod
    def single(
        cls, metadata: dict[str, Any], scenario: dict[str, Any], phases: dict[str, PhaseRecord]
    ) -> RunResult:
        return cls(metadata, scenario, [Point(None, phases)])


def default_run_dir(scenario: Scenario, now: dt.datetime | None = None) -> Path:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return PROJECT_ROOT / "results" / f"{stamp}-{scenario.name}"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def environment(started: dt.datetime, finished: dt.datetime, argv: list[str]) -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    status = _git("status", "--porcelain")
    return {
        "tokenwire_version": versions["tokenwire"],
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": versions,
        "started_utc": started.isoformat(),
        "finished_utc": finished.isoformat(),
        "argv": argv,
        "clock": "time.perf_counter_ns (CLOCK_MONOTONIC), shared by client and server on one host",
    }


def _transports_json(point: Point) -> dict[str, Any]:
    return {
        name: {"summary": point.summaries[name].to_json(), "phase": phase.to_json()}
        for name, phase in point.phases.items()
    }


def to_json(run: RunResult) -> dict[str, Any]:
    """Plain runs: `transports.<name>.{summary, phase}`. Sweeps: `sweep.{axis, values}` and
    `points[k].{value, transports}`, the same per-transport structure at every point."""
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "metadata": run.metadata,
        "scenario": run.scenario,
    }
    if run.is_sweep:
        data["sweep"] = {"axis": run.sweep_axis, "values": [p.value for p in run.points]}
        data["points"] = [{"value": p.value, "transports": _transports_json(p)} for p in run.points]
    else:
        data["transports"] = _transports_json(run.points[0])
    return data


def save_run(run: RunResult, run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "results.json"
    path.write_bytes(orjson.dumps(to_json(run), option=orjson.OPT_INDENT_2))
    write_summary_csv(run, run_dir / "summary.csv")
    return path


def load_run(run_dir: Path) -> RunResult:
    path = run_dir / "results.json" if run_dir.is_dir() else run_dir
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ResultsError(f"no results.json in {run_dir}") from None
    except orjson.JSONDecodeError as exc:
        raise ResultsError(f"{path} is not valid JSON: {exc}") from None
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{path} has schema_version {version!r}; this tokenwire reads {SCHEMA_VERSION}"
        )

    def phases(transports: dict[str, Any]) -> dict[str, PhaseRecord]:
        return {name: PhaseRecord.from_json(entry["phase"]) for name, entry in transports.items()}

    if "sweep" in data:
        points = [Point(p["value"], phases(p["transports"])) for p in data["points"]]
        return RunResult(data["metadata"], data["scenario"], points, data["sweep"]["axis"])
    return RunResult.single(data["metadata"], data["scenario"], phases(data["transports"]))


def summary_rows(run: RunResult) -> list[dict[str, Any]]:
    rows = []
    for point in run.points:
        for name, summary in point.summaries.items():
            rows.append(_row(run, point, name, summary))
    return rows


def _row(run: RunResult, point: Point, name: str, summary: TransportSummary) -> dict[str, Any]:
    row: dict[str, Any] = {"transport": name}
    if run.is_sweep:
        row[str(run.sweep_axis)] = point.value
    for key, value in summary.to_json().items():
        if isinstance(value, dict):
            for stat in ("p50", "p90", "p99", "mean", "max"):
                row[f"{key}_{stat}"] = value[stat]
        else:
            row[key] = value
    return row


def write_summary_csv(run: RunResult, path: Path) -> None:
    rows = summary_rows(run)
    if not rows:
        return
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
