"""The CI baseline: the figures `bench.py check` compares, taken from one or more saved runs
of one scenario, with their spread, and the scenario and environment they came from.

`results/baseline.json`:

```json
{
  "kind": "tokenwire-baseline",
  "schema_version": 2,
  "created_utc": "2026-11-21T11:30:00+00:00",
  "scenario": {"name": "ci", "requests": 24, "...": "as saved in the runs' results.json"},
  "environment": {"python": "3.11.9", "cpu_count": 2, "git_commit": "...", "...": "..."},
  "runs": [{"dir": "results/ci-1", "started_utc": "..."}],
  "transports": {
    "sse": {"added_delay_p50_ms": {"value": 0.75, "low": 0.74, "high": 0.81, "n": 3,
                                   "rounds": [0.74, 0.8, 0.77, "..."]}, "...": {}}
  }
}
```

Per transport and figure: `value` is the median over the baseline's runs, `low`/`high` the
range they spanned, `n` how many runs had the figure, `rounds` the figure in each round of
each run (a run of `repeat` rounds: `repeat` values; of one round: one), from which the check
tells a change from the noise between rounds (`harness.analyse.replications`). The figures
(see `FIGURES`) are read from the summaries of `harness.analyse.metrics`, whose docstrings
define them, plus one derived in the run itself: `added_delay_p50_vs_fastest`, a transport's
median added delay divided by the smallest median added delay of any transport in the same
run (in the same round, for `rounds`). Which figures are compared, and how tightly, is
decided in `harness.ci.check`, not here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from errors import BaselineError
from harness.analyse.metrics import TransportSummary, summarize
from harness.analyse.replications import round_phases
from harness.analyse.results import RunResult
from stacks import DEFAULT as DEFAULT_STACK
from stacks import DEFAULT_WORKERS

KIND = "tokenwire-baseline"
SCHEMA_VERSION = 2  # 2: `rounds` per figure

FIGURES: tuple[str, ...] = (
    "tokens_lost",
    "tokens_duplicated",
    "text_mismatches",
    "errors",
    "tokens_emitted",
    "wire_bytes_per_token",
    "requests_per_stream",
    "added_delay_p50_ms",
    "added_delay_mean_ms",
    "added_delay_p50_vs_fastest",
    "ttft_p50_ms",
    "e2e_p50_ms",
    "server_cpu_ms_per_1k_tokens",
    "client_cpu_ms_per_1k_tokens",
)

# Scenario fields that do not change what `bench.py run` measures: a baseline made with one
# of these different still fits. `inject` is the deliberate regression a test run adds on
# purpose; `load` shapes locust load tests (`bench.py load`), not runs.
IGNORED_SCENARIO_FIELDS = frozenset({"name", "description", "inject", "stream_timeout_s", "load"})
# fields whose absence (a scenario saved before they existed) means a value: compared as it
ABSENT_SCENARIO_FIELDS = {
    "stack": DEFAULT_STACK,
    "workers": DEFAULT_WORKERS,
    "threads": 0,
    "http": "auto",
}
ENVIRONMENT_FIELDS = (
    "tokenwire_version",
    "git_commit",
    "git_dirty",
    "python",
    "implementation",
    "platform",
    "machine",
    "cpu_count",
    "started_utc",
)

Figures = dict[str, float | None]  # figure name -> value, for one transport of one run


@dataclass(frozen=True, slots=True)
class FigureStats:
    """One figure over the baseline's runs: the median, the range and the run count."""

    value: float
    low: float
    high: float
    n: int
    rounds: tuple[float, ...] = ()  # in every round of every run

    @property
    def spread(self) -> float:
        return self.high - self.low

    @classmethod
    def of(cls, values: Sequence[float], rounds: Sequence[float] = ()) -> FigureStats:
        low, high = float(min(values)), float(max(values))
        return cls(float(np.median(values)), low, high, len(values), tuple(rounds))

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "rounds": list(self.rounds),
        }


TransportBaseline = dict[str, FigureStats]


@dataclass(frozen=True, slots=True)
class Baseline:
    scenario: dict[str, Any]
    environment: dict[str, Any]
    runs: list[dict[str, Any]]
    transports: dict[str, TransportBaseline]
    created_utc: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "schema_version": SCHEMA_VERSION,
            "created_utc": self.created_utc,
            "scenario": self.scenario,
            "environment": self.environment,
            "runs": self.runs,
            "transports": {
                name: {figure: stats.to_json() for figure, stats in figures.items()}
                for name, figures in self.transports.items()
            },
        }


def _fastest_p50(summaries: Mapping[str, TransportSummary]) -> float | None:
    medians = [s.added_delay_ms.p50 for s in summaries.values()]
    positive = [m for m in medians if m is not None and m > 0]
    return min(positive) if positive else None


def transport_figures(summary: TransportSummary, fastest_p50: float | None) -> Figures:
    """The compared figures of one transport; `fastest_p50` is the run's reference."""
    p50 = summary.added_delay_ms.p50
    return {
        "tokens_lost": summary.tokens_lost,
        "tokens_duplicated": summary.tokens_duplicated,
        "text_mismatches": summary.text_mismatches,
        "errors": summary.errors,
        "tokens_emitted": summary.tokens_emitted,
        "wire_bytes_per_token": summary.wire_bytes_per_token,
        "requests_per_stream": summary.requests_per_stream,
        "added_delay_p50_ms": p50,
        "added_delay_mean_ms": summary.added_delay_ms.mean,
        "added_delay_p50_vs_fastest": (
            None if p50 is None or fastest_p50 is None else p50 / fastest_p50
        ),
        "ttft_p50_ms": summary.ttft_ms.p50,
        "e2e_p50_ms": summary.e2e_ms.p50,
        "server_cpu_ms_per_1k_tokens": summary.server_cpu_ms_per_1k_tokens,
        "client_cpu_ms_per_1k_tokens": summary.client_cpu_ms_per_1k_tokens,
    }


def run_figures(run: RunResult) -> dict[str, Figures]:
    """Every transport's figures in a plain (non-sweep) run."""
    require_plain(run)
    fastest = _fastest_p50(run.summaries)
    return {name: transport_figures(s, fastest) for name, s in run.summaries.items()}


def round_figures(run: RunResult) -> list[dict[str, Figures]]:
    """Per round of a plain run (`repeat`; a run of one round has one), every transport's
    figures, the fastest transport's reference taken within the round."""
    require_plain(run)
    per_transport = {
        name: [
            summarize(p, intervals=False)
            for p in (round_phases(phase) if len(phase.rounds) > 1 else [phase])
        ]
        for name, phase in run.points[0].phases.items()
    }
    rounds = min(len(summaries) for summaries in per_transport.values())
    found = []
    for k in range(rounds):
        summaries = {name: s[k] for name, s in per_transport.items()}
        fastest = _fastest_p50(summaries)
        found.append({name: transport_figures(s, fastest) for name, s in summaries.items()})
    return found


def require_plain(run: RunResult, where: str = "the run") -> None:
    if run.is_sweep:
        raise BaselineError(
            f"{where} is a sweep (over {run.sweep_axis}); the regression check compares plain "
            "runs of one scenario, such as scenarios/ci.toml"
        )


def _measured(scenario: Mapping[str, Any]) -> dict[str, Any]:
    full = {**ABSENT_SCENARIO_FIELDS, **scenario}
    return {k: v for k, v in full.items() if k not in IGNORED_SCENARIO_FIELDS}


def scenario_differences(baseline: Mapping[str, Any], run: Mapping[str, Any]) -> list[str]:
    """Fields that differ between two saved scenarios, as `field: baseline X, run Y`. Fields
    that only one side has (a newer tokenwire added them) are left out, except those whose
    absence means a value (`ABSENT_SCENARIO_FIELDS`: a run on another server stack never
    matches a baseline saved before stacks)."""
    found = []
    left, right = _measured(baseline), _measured(run)
    for key in sorted(set(left) & set(right)):
        a, b = left[key], right[key]
        if isinstance(a, dict) and isinstance(b, dict):
            found += [f"{key}.{d}" for d in scenario_differences(a, b)]
        elif a != b:
            found.append(f"{key}: baseline {a!r}, run {b!r}")
    return found


def require_same_scenario(baseline: Baseline, run: RunResult, where: str) -> None:
    require_plain(run, where)
    differences = scenario_differences(baseline.scenario, run.scenario)
    if differences:
        raise BaselineError(
            f"the baseline was made with a different scenario than {where} "
            f"({'; '.join(differences)}); make a new one with `bench.py baseline RUN_DIR`"
        )
    missing = sorted(set(baseline.transports) - set(run.summaries))
    if missing:
        raise BaselineError(f"{where} did not measure {', '.join(missing)}, which the baseline has")


def _injected(scenario: Mapping[str, Any]) -> bool:
    inject = scenario.get("inject") or {}
    return any(bool(value) for value in inject.values())


def make_baseline(runs: Sequence[tuple[Path, RunResult]]) -> Baseline:
    """A baseline from runs of one scenario: per figure the median and range over them."""
    if not runs:
        raise BaselineError("a baseline needs at least one run")
    first_dir, first = runs[0]
    for run_dir, run in runs:
        require_plain(run, str(run_dir))
        if _injected(run.scenario):
            raise BaselineError(
                f"{run_dir} was run with an injected regression ([inject] "
                f"{run.scenario['inject']}); a baseline must come from an honest run"
            )
        differences = scenario_differences(first.scenario, run.scenario)
        if differences or set(run.summaries) != set(first.summaries):
            detail = "; ".join(differences) or "different transports"
            raise BaselineError(f"{run_dir} and {first_dir} differ in scenario ({detail})")
    per_run = [run_figures(run) for _, run in runs]
    per_round = [r for _, run in runs for r in round_figures(run)]
    transports: dict[str, TransportBaseline] = {}
    for name in first.summaries:
        stats: TransportBaseline = {}
        for figure in FIGURES:
            values = [f[name][figure] for f in per_run]
            present = [float(v) for v in values if v is not None]
            rounds = [r[name][figure] for r in per_round]
            if present:
                kept = rounds if all(v is not None for v in rounds) else []
                stats[figure] = FigureStats.of(present, [float(v) for v in kept if v is not None])
        transports[name] = stats
    environment = {k: first.metadata.get(k) for k in ENVIRONMENT_FIELDS}
    return Baseline(
        scenario=dict(first.scenario),
        environment=environment,
        runs=[
            {"dir": str(run_dir), "started_utc": run.metadata.get("started_utc")}
            for run_dir, run in runs
        ],
        transports=transports,
        created_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def save_baseline(baseline: Baseline, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(baseline.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    return path


def _stats(where: str, data: Any) -> FigureStats:
    try:
        stats = FigureStats(
            float(data["value"]),
            float(data["low"]),
            float(data["high"]),
            int(data["n"]),
            tuple(float(v) for v in data.get("rounds", ())),
        )
    except (TypeError, KeyError, ValueError, AttributeError):
        raise BaselineError(
            f"{where} needs numbers value, low, high and n (and a list of numbers rounds); "
            f"got {data!r}"
        ) from None
    if not stats.low <= stats.value <= stats.high or stats.n < 1:
        raise BaselineError(f"{where} is inconsistent (need low <= value <= high, n >= 1)")
    return stats


def load_baseline(path: Path) -> Baseline:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise BaselineError(
            f"baseline {path} does not exist; make one with `bench.py baseline RUN_DIR`"
        ) from None
    except IsADirectoryError:
        raise BaselineError(f"baseline {path} is a folder; give the baseline's JSON file") from None
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise BaselineError(f"baseline {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise BaselineError(f'{path} is not a tokenwire baseline (no "kind": "{KIND}")')
    if data.get("schema_version") != SCHEMA_VERSION:
        raise BaselineError(
            f"baseline {path} has schema_version {data.get('schema_version')!r}; this "
            f"tokenwire reads {SCHEMA_VERSION}: make a new one with `bench.py baseline RUN_DIR`"
        )
    transports = data.get("transports")
    scenario = data.get("scenario")
    if not isinstance(transports, dict) or not transports or not isinstance(scenario, dict):
        raise BaselineError(f"baseline {path} needs a scenario and at least one transport")
    parsed: dict[str, TransportBaseline] = {}
    for name, figures in transports.items():
        if not isinstance(figures, dict):
            raise BaselineError(f"baseline {path}: transports.{name} must be an object")
        parsed[name] = {
            figure: _stats(f"baseline {path}: transports.{name}.{figure}", stats)
            for figure, stats in figures.items()
            if figure in FIGURES
        }
    return Baseline(
        scenario=scenario,
        environment=dict(data.get("environment") or {}),
        runs=list(data.get("runs") or []),
        transports=parsed,
        created_utc=str(data.get("created_utc", "")),
    )


def environment_differences(baseline: Baseline, run: RunResult) -> list[str]:
    """Where the run's machine differs from the baseline's (a warning, not an error)."""
    return [
        f"{key} {baseline.environment.get(key)!r} -> {run.metadata.get(key)!r}"
        for key in ("machine", "cpu_count", "implementation", "python")
        if key in baseline.environment and baseline.environment.get(key) != run.metadata.get(key)
    ]
