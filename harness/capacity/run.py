"""`bench.py capacity` from start to finish: per transport and server stack (a *cell*), the
unloaded probe and then the bounded search (`search.py`), each probe a real benchmark run
of that one transport at one concurrency on a fresh server process of that stack (so its
peak memory is its own); then `capacity.json`, the charts and `capacity.html` in the run
folder.

The cells are searched one after another: per transport, each stack in turn (so that one
transport's stacks are measured close together in time). Each gets its unloaded probe
whatever the time, then an equal share of what is left of the time budget (a cell that
finishes early leaves its time to the ones after it).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson
from rich.console import Console

from harness.analyse.results import RunResult, environment, save_run
from harness.capacity.assess import (
    SEARCH,
    UNLOADED,
    Probe,
    assess,
    steady_part,
    ttft_overhead_p99_ms,
)
from harness.capacity.chart import source_text
from harness.capacity.figures import CapacityRun, TransportCapacity, cell_name, conclude
from harness.capacity.report import capacity_table, probe_line, write_capacity_report
from harness.capacity.search import SearchLimits, search
from harness.capacity.slo import Slo, design_delay, raise_limits, unloaded_misses
from harness.measure.peak_memory import PeakSampler
from harness.measure.records import PhaseRecord
from harness.measure.scenario import Scenario
from harness.pipeline import measure
from servers.sources.mock import profile_for

RESULTS_NAME = "capacity.json"


@dataclass(frozen=True, slots=True)
class CapacitySettings:
    slo: Slo = field(default_factory=Slo)
    limits: SearchLimits = field(default_factory=SearchLimits)
    streams_per_probe: float = 2.0  # streams each probe runs, times its concurrency
    unloaded_streams: int = 10  # streams of the unloaded probe, one at a time
    time_budget_s: float = 1200.0
    keep_probes: bool = False  # save each probe's results.json (every raw record)

    def to_json(self) -> dict[str, object]:
        return {
            "streams_per_probe": self.streams_per_probe,
            "unloaded_streams": self.unloaded_streams,
            "time_budget_s": self.time_budget_s,
            "reruns": "once, a failure on timing figures alone",
        }


def probe_streams(settings: CapacitySettings, role: str, concurrency: int) -> int:
    if role == UNLOADED:
        return settings.unloaded_streams
    return max(concurrency, math.ceil(settings.streams_per_probe * concurrency))


def stream_length_s(scenario: Scenario) -> float:
    """How long one of the mock's streams is planned to last (its first token plus its
    median gaps); 0 for other sources, whose lengths are not known in advance."""
    spec = scenario.source
    if spec.kind != "mock":
        return 0.0
    profile = profile_for(spec.preset, spec.ttft_ms, spec.tokens_per_s, spec.tokens_per_response)
    gaps = (
        0.0
        if math.isinf(profile.tokens_per_s)
        else (profile.tokens_per_response - 1) / profile.tokens_per_s
    )
    return profile.ttft_ms / 1000 + gaps


def probe_scenario(scenario: Scenario, transport: str, concurrency: int, streams: int) -> Scenario:
    """The scenario of one probe: one transport, `streams` streams, `concurrency` at once,
    started evenly over one stream's length (the scenario's `ramp_s` when it sets one).
    Without a ramp, streams of equal length run in lockstep and every wave of requests
    lands on the server in the same few milliseconds: measured, 100 SSE streams failed
    TTFT p99 (176-217 ms against 125) with the server 0.26 cores busy, a burst no user
    population makes."""
    ramp_s = scenario.ramp_s or stream_length_s(scenario)
    return replace(
        scenario,
        transports=(transport,),
        concurrency=concurrency,
        requests=streams,
        sweep=None,
        ramp_s=ramp_s,
    )


def run_probe(scenario: Scenario, probe_dir: Path) -> tuple[PhaseRecord, int | None, float]:
    """One real benchmark run of the scenario's one transport on fresh servers (the
    pipeline's `measure`: server log and path files in `probe_dir`); the phase, the servers'
    peak resident memory together (None where /proc has none) and the wall time it took."""
    started = time.monotonic()
    with PeakSampler() as memory:
        points = measure(scenario, probe_dir, Console(quiet=True))
    phase = points[0].phases[scenario.transports[0]]
    return phase, memory.peak_bytes, time.monotonic() - started


def stack_scenarios(scenario: Scenario) -> list[Scenario]:
    """The scenario on each stack it searches: every stack of a sweep over stacks (`--stack
    a,b`), or its one stack."""
    if scenario.sweep is not None and scenario.sweep.axis == "stack":
        return [replace(scenario.at(v), sweep=None) for v in scenario.sweep.values]
    return [scenario]


class TransportSearch:
    """The unloaded probe and the search of one transport on the scenario's stack, printing
    a line per probe. `several_stacks`: the run searches more than one stack, so the cell is
    named with its stack and its probes are kept under `probes/<stack>/`."""

    def __init__(
        self,
        scenario: Scenario,
        transport: str,
        settings: CapacitySettings,
        run_dir: Path,
        console: Console,
        deadline: float,
        metadata: dict[str, object],
        several_stacks: bool = False,
    ) -> None:
        self.scenario = scenario
        self.transport = transport
        self.name = cell_name(transport, scenario.stack, 2 if several_stacks else 1)
        self.probe_root = run_dir / "probes" / (scenario.stack if several_stacks else "")
        self.settings = settings
        self.run_dir = run_dir
        self.console = console
        self.deadline = deadline
        self.metadata = metadata
        self.design = design_delay(transport, scenario.knob)
        self.probes: list[Probe] = []
        self.unloaded_overhead_ms: float | None = None
        self.raised: dict[str, float] = {}  # figure -> unloaded value its limit is raised by

    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def attempt(self, concurrency: int, role: str, rerun: bool = False) -> Probe:
        streams = probe_streams(self.settings, role, concurrency)
        scenario = probe_scenario(self.scenario, self.transport, concurrency, streams)
        label = f"{self.transport}-c{concurrency}{'-rerun' if rerun else ''}"
        probe_dir = self.probe_root / label
        what = "unloaded" if role == UNLOADED else f"{concurrency} streams in flight"
        with self.console.status(f"{self.name}: {what}, {streams} streams ..."):
            phase, peak_bytes, duration = run_probe(scenario, probe_dir)
        if role == UNLOADED:
            self.unloaded_overhead_ms = ttft_overhead_p99_ms(steady_part(phase, concurrency))
        probe = assess(
            phase,
            self.settings.slo,
            role,
            concurrency=concurrency,
            unloaded_overhead_ms=self.unloaded_overhead_ms,
            design=self.design,
            raised=self.raised,
            server_peak_rss_bytes=peak_bytes,
            duration_s=duration,
            rerun=rerun,
        )
        self.probes.append(probe)
        if self.settings.keep_probes:
            run = RunResult.single(self.metadata, scenario.to_json(), {self.transport: phase})
            save_run(run, probe_dir)
        self.console.print(probe_line(probe, len(self.probes), self.name), highlight=False)
        return probe

    def measure(self, concurrency: int, role: str) -> Probe:
        """A probe, re-run once when it failed on timing figures alone (its re-run's
        verdict counts)."""
        probe = self.attempt(concurrency, role)
        if probe.verdict.timing_only and not self.out_of_time():
            probe.superseded = True
            self.console.print(
                f"  {self.name}: failed on timing alone; re-running it once to tell "
                "overload from a disturbance",
                highlight=False,
            )
            probe = self.attempt(concurrency, role, rerun=True)
        return probe

    def run(self) -> TransportCapacity:
        limits = self.settings.limits
        unloaded = self.measure(1, UNLOADED)
        if not unloaded.passed and not self.settings.slo.strict:
            self.raised = unloaded_misses(unloaded.verdict)  # what no load already misses
            if self.raised:
                unloaded.verdict = raise_limits(unloaded.verdict, self.raised)
                raised = [c.text() for c in unloaded.verdict.checks if c.figure in self.raised]
                self.console.print(
                    f"  {self.name}: unloaded already misses a limit; its search uses "
                    + "; ".join(raised),
                    highlight=False,
                )
        if not unloaded.passed:
            stopped = "unloaded"
        else:

            def oracle(concurrency: int) -> bool | None:
                if self.out_of_time():
                    return None
                return self.measure(concurrency, SEARCH).passed

            _, step = search(oracle, limits, floor=1)
            stopped = step.why
        stack = self.scenario.stack_setup()
        return conclude(
            self.transport,
            self.probes,
            limits,
            stopped=stopped,
            design=self.design,
            strict=self.settings.slo.strict,
            raised=self.raised,
            stack=stack.name,
            workers=stack.workers,
            threads=stack.threads,
        )


def run_capacity(
    scenario: Scenario,
    settings: CapacitySettings,
    run_dir: Path,
    console: Console,
    argv: list[str],
) -> CapacityRun:
    """Search every transport of `scenario` on each of its stacks, then save, chart, report
    and print."""
    started = dt.datetime.now(dt.UTC)
    run_dir.mkdir(parents=True, exist_ok=True)
    limits = settings.limits
    on_stacks = stack_scenarios(scenario)
    stacks = ", ".join(s.stack for s in on_stacks)
    console.print(
        f"[bold]tokenwire capacity[/]: {', '.join(scenario.transports)} on {stacks}; "
        f"{source_text(scenario.to_json())}; unloaded first, then from {limits.start} streams "
        f"in flight doubling up to {limits.maximum}, at most {limits.max_probes} probes of "
        f"{settings.streams_per_probe:g}x their concurrency each; time budget "
        f"{settings.time_budget_s:g} s; results in {run_dir}",
        highlight=False,
    )
    console.print(f"SLO: {settings.slo.text()}", highlight=False)
    metadata = environment(started, started, argv)
    end = time.monotonic() + settings.time_budget_s
    cells = [(t, on_stack) for t in scenario.transports for on_stack in on_stacks]
    results: list[TransportCapacity] = []
    for k, (transport, on_stack) in enumerate(cells):
        left = len(cells) - k
        deadline = time.monotonic() + max(end - time.monotonic(), 0.0) / left
        searcher = TransportSearch(
            on_stack,
            transport,
            settings,
            run_dir,
            console,
            deadline,
            metadata,
            several_stacks=len(on_stacks) > 1,
        )
        results.append(searcher.run())
    metadata = environment(started, dt.datetime.now(dt.UTC), argv)
    run = CapacityRun(
        metadata=metadata,
        scenario=scenario.to_json(),
        slo=settings.slo,
        limits=limits,
        settings=settings.to_json(),
        cells=results,
    )
    (run_dir / RESULTS_NAME).write_bytes(orjson.dumps(run.to_json(), option=orjson.OPT_INDENT_2))
    report = write_capacity_report(run, run_dir)
    console.print(capacity_table(run, f"capacity within the SLO ({run_dir})"))
    console.print(f"results: {run_dir / RESULTS_NAME}; report: {report}", highlight=False)
    return run
