"""Run folders: `results.json` (versioned, with environment metadata and every raw record),
`summary.csv`, and the charts. Analysis reads only what is saved here.

`results.json` carries `schema_version`. This code writes `SCHEMA_VERSION` and reads every
version from 1 up to it: `load_run` decodes the document, then `migrate` applies
`MIGRATIONS` in order, each taking a decoded document of version N to N + 1, until it is
current; only then are records built from it. A document without a version, or newer than
this code, is refused with a `ResultsError` saying what to do. Changing the schema is:
append the migration from the last version to `MIGRATIONS` (which makes `SCHEMA_VERSION`
one more), write the new field, and list the version below.

Versions:

1. The first: `transports.<name>.{summary, phase}` (plain runs) or `sweep` and
   `points[k].transports` (sweeps); `phase` is a `PhaseRecord` with its raw records.
2. Each phase records its transport's `kind` (`push`, `poll`; null for `direct`), from the
   transport registry, so that analysis need not guess it from request counts. Version 1
   files get it from the registry when it knows the transport, else from their records:
   more than one request per stream is `poll`.
3. A phase's free-form `extra` dict becomes typed parts, one writer each
   (`harness.measure.records`): `setup` (the driver's `PhaseSetup`: order, path, process
   counts, load, resume grace, streams per server, client CPU per process, `raw_client`,
   and a shared window's CPU as `shared_window` {server_cpu_s, client_cpu_s, cpu}, which
   version 2 kept as `cpu`, `window_server_cpu_s`, `window_client_cpu_s`), `load_test`
   (a load test's `LoadTestSetup`, which version 2 marked with `load: true`), `browser`
   (the browser client's `BrowserFigures`: version 2's `browser` entry with `client_cpu`
   and `python_client_cpu_s`; its `client: "browser"` is the scenario's `client`) and
   `path_parameters`. Nothing else changes: `_v2_to_v3` moves every entry.
4. Each summary's figures carry their 95% confidence intervals, a bootstrap over streams
   (`harness.analyse.intervals`): a distribution's `p50_ci`, `p90_ci`, `p99_ci` and
   `mean_ci`, and `tokens_per_s_ci`, `aggregate_tokens_per_s_ci`,
   `wire_bytes_per_token_ci`, `payload_bytes_per_token_ci`, `header_bytes_per_token_ci`,
   `requests_per_stream_ci`, `delivered_ratio_ci` (steady % demand) and, over the rounds
   of a repeated run, `server_cpu_ms_per_1k_tokens_ci` and `client_cpu_ms_per_1k_tokens_ci`,
   each `{"lo": .., "hi": ..}` or null; a repeated run's are over its rounds
   (`harness.analyse.replications`). Summaries are recomputed from the records on reading,
   so older files get them too.

Optional fields that a reader treats as absent in older files need no new version: the
scenario's `server_processes` and `client_processes` (the counts a run used; absent: one
of each), `metadata.processes`, a phase's `setup` entries that default (one process of
each, None: not recorded), the scenario's `stack`, `workers` and `threads` (absent: the
default stack, `stacks.DEFAULT`, the only one before stacks; `threads` 0 is "4 per core")
and a phase's `stack` (`StackSetup`: the stack as run, with a threaded stack's workers and
threads resolved and its server's HTTP versions; absent: the default stack); the
scenario's `repeat`, a request's `repeat` (its round) and a setup's `rounds` (absent: one
round); the metadata's `hardware` and `stability`.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from errors import ResultsError
from harness.analyse.metrics import TransportSummary, summarize, ttft_minus_direct_ms
from harness.measure.records import SHARED_CPU, PhaseRecord, SweepValue
from harness.measure.scenario import Scenario
from harness.measure.server_process import PROJECT_ROOT
from transports import DIRECT, TRANSPORTS, Kind

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


def transport_kind(name: str, requests: Sequence[int]) -> str | None:
    """The kind of the transport a phase measured, as results record it: the registry's
    (`transports.py`) when it knows the transport; None for `direct` (no transport); for a
    transport it does not know (a run from another checkout), the guess its records allow,
    from `requests` (each stream's request count): more than one request per stream polls."""
    if name == DIRECT:
        return None
    if name in TRANSPORTS:
        return str(TRANSPORTS.get(name).kind)
    polled = bool(requests) and sum(requests) / len(requests) > 1
    return str(Kind.POLL if polled else Kind.PUSH)


def _with_kind(name: str, phase: PhaseRecord) -> PhaseRecord:
    if phase.kind is not None or name == DIRECT:
        return phase
    return replace(phase, kind=transport_kind(name, [r.requests for r in phase.requests]))


@dataclass
class Point:
    """The transports measured at one point of a run (a plain run has exactly one point;
    a sweep has one per swept value)."""

    value: SweepValue | None
    phases: dict[str, PhaseRecord]
    summaries: dict[str, TransportSummary] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.phases = {name: _with_kind(name, phase) for name, phase in self.phases.items()}
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

    @property
    def kinds(self) -> dict[str, str | None]:
        """Each measured transport's kind (`push`, `poll`; None for `direct`), as recorded."""
        return {name: phase.kind for p in self.points for name, phase in p.phases.items()}

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
    versions: dict[str, str | None] = {}
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


# --- reading, and migrating older versions ------------------------------------------------

Document = dict[str, Any]  # a decoded results.json
Migration = Callable[[Document], Document]


def _transport_tables(data: Document) -> Iterator[dict[str, Any]]:
    """Each `transports` table of a document: the one of a plain run, one per sweep point."""
    if "sweep" in data:
        for point in data["points"]:
            yield point["transports"]
    else:
        yield data["transports"]


def _v1_to_v2(data: Document) -> Document:
    """Version 2 records each phase's transport kind: fill it in as `transport_kind` does."""
    for transports in _transport_tables(data):
        for name, entry in transports.items():
            phase = entry["phase"]
            counts = [int(r.get("requests", 0)) for r in phase.get("requests", [])]
            phase["kind"] = transport_kind(name, counts)
    return data


# a version 2 phase's `extra` entries that version 3 keeps in `setup` as they were
V2_SETUP_KEYS = (
    "order",
    "path",
    "server_processes",
    "client_processes",
    "load",
    "rate",
    "arrivals",
    "resume_grace_s",
    "streams_per_server",
    "client_cpu_s_per_process",
    "raw_client",
)
V2_BROWSER_KEYS = ("client_cpu", "python_client_cpu_s")  # beside the `browser` entry


def _typed_parts(extra: dict[str, Any]) -> dict[str, Any]:
    """Version 3's typed parts of a phase from version 2's `extra` dict (see the docstring)."""
    shared = None
    if "window_server_cpu_s" in extra:
        shared = {
            "server_cpu_s": extra["window_server_cpu_s"],
            "client_cpu_s": extra.get("window_client_cpu_s"),
            "cpu": extra.get("cpu", SHARED_CPU),
        }
    parts: dict[str, Any] = {"path_parameters": extra.get("path_parameters", {})}
    if extra.get("load") is True:  # `bench.py load` wrote it
        parts["load_test"] = {
            "order": extra.get("order", "sequential"),
            "streams_per_worker": extra.get("streams_per_worker", {}),
            "hosts": extra.get("hosts", []),
            "shared_window": shared,
        }
    elif "order" in extra:  # the driver wrote it
        setup = {key: extra[key] for key in V2_SETUP_KEYS if key in extra}
        parts["setup"] = setup | {"shared_window": shared}
    if isinstance(extra.get("browser"), dict):
        browser = {key: extra[key] for key in V2_BROWSER_KEYS if key in extra}
        parts["browser"] = extra["browser"] | browser
    return parts


def _v2_to_v3(data: Document) -> Document:
    """Version 3 types a phase's `extra` dict: its entries move to `setup`, `load_test`,
    `browser` and `path_parameters` (`_typed_parts`)."""
    for transports in _transport_tables(data):
        for entry in transports.values():
            phase = entry["phase"]
            phase.update(_typed_parts(phase.pop("extra", None) or {}))
    return data


def _v3_to_v4(data: Document) -> Document:
    """Version 4 gives every summary figure its 95% confidence interval (`*_ci`). Summaries
    are computed again from the raw records whenever a run is read, so a version 3
    document gets its intervals then, and needs no change here."""
    return data


# MIGRATIONS[k] takes a document of version k + 1 to version k + 2, so the current version is
# one more than the migrations there are: a schema change appends its migration here.
MIGRATIONS: tuple[Migration, ...] = (_v1_to_v2, _v2_to_v3, _v3_to_v4)
SCHEMA_VERSION = len(MIGRATIONS) + 1


def migrate(data: Any, where: str = "results") -> Document:
    """A decoded results document of any version from 1 to `SCHEMA_VERSION`, brought to
    `SCHEMA_VERSION` by applying `MIGRATIONS` in order (the document is changed in place).
    Anything else is a `ResultsError` naming `where` and what to do."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version is None:
        raise ResultsError(
            f"{where} has no schema_version: it is not a tokenwire results.json, or one older "
            f"than versioned results (this tokenwire reads versions 1 to {SCHEMA_VERSION}); "
            "make it again with `bench.py run`"
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ResultsError(
            f"{where} has schema_version {version!r}, which no tokenwire writes (this one "
            f"reads versions 1 to {SCHEMA_VERSION}); make it again with `bench.py run`"
        )
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{where} has schema_version {version}, newer than this tokenwire reads (versions "
            f"1 to {SCHEMA_VERSION}); update tokenwire (git pull, then pip install -e .) to "
            "read it"
        )
    for step in MIGRATIONS[version - 1 :]:
        data = step(data)
        version += 1
        data["schema_version"] = version
    return data


def load_run(run_dir: Path) -> RunResult:
    path = run_dir / "results.json" if run_dir.is_dir() else run_dir
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ResultsError(f"no results.json in {run_dir}") from None
    except orjson.JSONDecodeError as exc:
        raise ResultsError(f"{path} is not valid JSON: {exc}") from None
    data = migrate(data, str(path))

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
        if isinstance(value, dict) and "p50" in value:  # a distribution, with its intervals
            for stat in ("p50", "p90", "p99", "mean", "max"):
                row[f"{key}_{stat}"] = value[stat]
            for stat in ("p50", "p90", "p99", "mean"):
                interval = value.get(f"{stat}_ci") or {}
                row[f"{key}_{stat}_ci_lo"] = interval.get("lo")
                row[f"{key}_{stat}_ci_hi"] = interval.get("hi")
        elif key.endswith("_ci"):  # a scalar's interval
            bounds = value if isinstance(value, dict) else {}
            row[f"{key}_lo"] = bounds.get("lo")
            row[f"{key}_hi"] = bounds.get("hi")
        elif not isinstance(value, dict):
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
