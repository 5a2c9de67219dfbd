"""Run folders: `results.json` (versioned, with environment metadata and every raw record),
`summary.csv`, and the charts. Analysis reads only what is saved here."""

from __future__ import annotations

import csv
import datetime as dt
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from harness.metrics import Distribution, TransportSummary, summarize
from harness.records import PhaseRecord
from harness.scenario import Scenario
from harness.server_process import PROJECT_ROOT

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
DISTRIBUTIONS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "added_delay_ms", "tokens_per_chunk")


class ResultsError(ValueError):
    """A results folder or file that cannot be read."""


@dataclass
class RunResult:
    metadata: dict[str, Any]
    scenario: dict[str, Any]
    phases: dict[str, PhaseRecord]
    summaries: dict[str, TransportSummary] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.summaries:
            self.summaries = {name: summarize(phase) for name, phase in self.phases.items()}


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


def to_json(run: RunResult) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "metadata": run.metadata,
        "scenario": run.scenario,
        "transports": {
            name: {"summary": run.summaries[name].to_json(), "phase": phase.to_json()}
            for name, phase in run.phases.items()
        },
    }


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
    phases = {
        name: PhaseRecord.from_json(entry["phase"]) for name, entry in data["transports"].items()
    }
    return RunResult(metadata=data["metadata"], scenario=data["scenario"], phases=phases)


def summary_rows(run: RunResult) -> list[dict[str, Any]]:
    rows = []
    for name, summary in run.summaries.items():
        row: dict[str, Any] = {"transport": name}
        for key, value in summary.to_json().items():
            if isinstance(value, dict):
                for stat in ("p50", "p90", "p99", "mean", "max"):
                    row[f"{key}_{stat}"] = value[stat]
            else:
                row[key] = value
        rows.append(row)
    return rows


def write_summary_csv(run: RunResult, path: Path) -> None:
    rows = summary_rows(run)
    if not rows:
        return
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


__all__ = ["DISTRIBUTIONS", "Distribution", "RunResult", "environment", "load_run", "save_run"]
