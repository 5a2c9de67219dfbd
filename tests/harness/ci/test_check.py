"""The regression check: quiet on identical configurations, loud on real regressions, and
one line with exit 2 on bad input. Mostly synthetic runs built from raw records; one real
pair of short runs proves an injected regression is caught end to end."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict, Unpack

import orjson
import pytest
from support import bench

from bench import main
from harness.analyse.results import Point, RunResult, save_run
from harness.ci.baseline import (
    FigureStats,
    load_baseline,
    make_baseline,
    save_baseline,
    scenario_differences,
)
from harness.ci.check import Verdict, check, compare_runs, rerun_scenario, rules_for
from harness.measure.records import PhaseRecord, RequestRecord
from harness.measure.run.rounds import merged_rounds
from harness.measure.scenario import Inject, load_scenario, validated

ROOT = Path(__file__).resolve().parents[3]
CI_SCENARIO = load_scenario(ROOT / "scenarios" / "ci.toml")
MS = 1_000_000

# What each transport looks like on a quiet machine (scenarios/ci.toml): median added
# delay ms, wire bytes per token, requests per stream.
QUIET: dict[str, tuple[float, float, int]] = {
    "short_poll": (53.0, 90.0, 14),
    "long_poll": (2.0, 375.0, 70),
    "sse": (0.75, 47.5, 1),
    "chunked": (0.42, 33.2, 1),
    "websocket": (0.38, 28.1, 1),
}


def synthetic_phase(
    transport: str,
    *,
    delay_ms: float,
    bytes_per_token: float,
    requests: int,
    streams: int = 8,
    tokens: int = 40,
    lost: int = 0,
    errors: int = 0,
    cpu_s: float = 0.02,
) -> PhaseRecord:
    """Streams whose tokens arrive `delay_ms` (+-20%, or +-interval/2 when paced) after
    their emit stamps; `lost` tokens missing from the first stream; `errors` failed ones."""
    records = []
    for k in range(streams):
        start = k * 2_000 * MS
        emit = [start + int((100 + 12.5 * i) * MS) for i in range(tokens)]
        jitter = [((i * 7) % 11 - 5) / 5 for i in range(tokens)]  # -1 .. 1
        width = delay_ms if delay_ms > 20 else 0.2 * delay_ms
        recv = [e + int((delay_ms + width * j) * MS) for e, j in zip(emit, jitter, strict=True)]
        got = tokens - lost if k == 0 else tokens
        records.append(
            RequestRecord(
                transport=transport,
                index=k,
                seed=k,
                stream_id=f"r1-{transport}-{k}",
                scheduled_ns=start,
                end_ns=recv[-1] + MS,
                token_index=list(range(got)),
                recv_ns=recv[:got],
                emit_ns=list(emit[:got]),
                token_bytes=[4] * got,
                chunk_sizes=[1] * got,
                source_tokens=tokens,
                bytes_received=round(bytes_per_token * got),
                requests=requests,
                error_kind="http" if k < errors else None,
            )
        )
    return PhaseRecord(transport, 0, streams * 2_000 * MS, cpu_s, cpu_s, requests=records)


class Change(TypedDict, total=False):
    """What a synthetic run changes: `synthetic_run`'s keywords other than the scenario."""

    noise: float
    extra_delay_ms: float
    pad: float
    lost: dict[str, int]
    errors: dict[str, int]


def synthetic_run(
    *,
    noise: float = 1.0,
    extra_delay_ms: float = 0.0,
    pad: float = 0.0,
    lost: dict[str, int] | None = None,
    errors: dict[str, int] | None = None,
    scenario: dict[str, Any] | None = None,
) -> RunResult:
    """A run of the CI scenario. `noise` (contention) scales CPU figures and message delays;
    polling's interval-paced delay only grows by (noise - 1) ms."""
    phases = {}
    for name, (delay, wire, requests) in QUIET.items():
        noisy = delay + (noise - 1) if delay > 20 else delay * noise
        phases[name] = synthetic_phase(
            name,
            delay_ms=noisy + extra_delay_ms,
            bytes_per_token=wire + pad,
            requests=requests,
            lost=(lost or {}).get(name, 0),
            errors=(errors or {}).get(name, 0),
            cpu_s=0.02 * noise,
        )
    metadata = {"machine": "x86_64", "cpu_count": 2, "python": "3.11.9", "started_utc": "t"}
    return RunResult.single(metadata, scenario or CI_SCENARIO.to_json(), phases)


def write(run: RunResult, run_dir: Path) -> Path:
    save_run(run, run_dir)
    return run_dir


@pytest.fixture
def baseline_file(tmp_path: Path) -> Path:
    run_dir = write(synthetic_run(), tmp_path / "base")
    path = tmp_path / "baseline.json"
    assert main(["baseline", str(run_dir), "--out", str(path)]) == 0
    return path


def run_check(run: RunResult, baseline: Path, tmp_path: Path, *extra: str) -> int:
    run_dir = write(run, tmp_path / "candidate")
    return main(["check", str(run_dir), "--baseline", str(baseline), "--reruns", "0", *extra])


@pytest.mark.parametrize(
    ("change", "status", "phrases"),
    [
        ({"noise": 1.5}, 0, ("regression check passed", *QUIET)),
        (
            {"extra_delay_ms": 5},
            1,
            ("regression check failed", "added delay p50", "sse", "chunked", "websocket"),
        ),
        ({"pad": 8}, 1, ("wire bytes per token", "exact")),  # exact: fails at once
    ],
    ids=["identical-configuration-passes", "injected-delay-fails", "injected-padding-fails"],
)
def test_check_names_what_regressed(
    baseline_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: Change,
    status: int,
    phrases: tuple[str, ...],
) -> None:
    exit_status = run_check(synthetic_run(**change), baseline_file, tmp_path)
    out = capsys.readouterr().out
    assert exit_status == status, out
    for phrase in phrases:
        assert phrase in out, (phrase, out)


@pytest.mark.parametrize(
    ("damage", "label"),
    [
        ({"lost": {"sse": 1}}, "tokens lost"),
        ({"errors": {"websocket": 1}}, "failed streams"),
    ],
)
def test_deterministic_regressions_fail_without_reruns(
    baseline_file: Path, damage: Change, label: str
) -> None:
    baseline = load_baseline(baseline_file)

    def never(k: int, verdict: Verdict) -> RunResult:
        raise AssertionError("exact regressions must not be re-run")

    verdict = check(baseline, [synthetic_run(**damage)], never, max_reruns=2)
    assert not verdict.passed
    assert {f.rule.label for f in verdict.exact_regressions} == {label}


def rerunner(**change: Unpack[Change]) -> tuple[Callable[[int, Verdict], RunResult], list[int]]:
    """A re-run callback for `check` that measures `synthetic_run(**change)` each time, and
    the re-run numbers it is called with."""
    calls: list[int] = []

    def rerun(k: int, verdict: Verdict) -> RunResult:
        calls.append(k)
        return synthetic_run(**change)

    return rerun, calls


def test_a_noise_burst_is_cleared_by_reruns(baseline_file: Path) -> None:
    """A burst beyond tolerance in the first run; one quiet re-run, and the change's
    interval over the rounds of both runs (one each) holds 0: the runs disagree by more
    than the median moved, so it is not a regression."""
    baseline = load_baseline(baseline_file)
    quiet_again, calls = rerunner(noise=1.2)
    burst = synthetic_run(noise=12)  # every delay and CPU figure x12: a busy neighbour
    assert not compare_runs(baseline, [burst]).passed
    verdict = check(baseline, [burst], quiet_again, max_reruns=2)
    assert verdict.passed
    assert verdict.runs == 2 and calls == [1]
    assert verdict.within_noise  # beyond tolerance, within noise
    assert all(f.interval is not None and f.interval.contains(0.0) for f in verdict.within_noise)


def test_a_real_timing_regression_persists_through_reruns(baseline_file: Path) -> None:
    baseline = load_baseline(baseline_file)
    still_slow, calls = rerunner(extra_delay_ms=5)
    verdict = check(baseline, [synthetic_run(extra_delay_ms=5)], still_slow, max_reruns=2)
    assert not verdict.passed and calls == [1, 2]
    regressed = {(f.transport, f.rule.figure) for f in verdict.regressions}
    assert ("websocket", "added_delay_p50_ms") in regressed
    assert all(f.rule.kind == "timing" for f in verdict.regressions)


@pytest.mark.parametrize("registered", [True, False], ids=["by-kind", "by-figures"])
def test_rules_follow_the_kind_or_else_the_figures(baseline_file: Path, registered: bool) -> None:
    """Registered transports are judged by their kind in the registry; unknown ones (runs
    from another checkout) by their figures, with the same outcome for the five."""
    baseline = load_baseline(baseline_file)
    interval = float(CI_SCENARIO.knob("poll_interval_ms"))
    by_transport = {
        n: {r.figure: r for r in rules_for(n if registered else f"old-{n}", f, interval)}
        for n, f in baseline.transports.items()
    }
    # short polling is paced by its interval: its mean is compared, not its p50
    assert "added_delay_mean_ms" in by_transport["short_poll"]
    assert "added_delay_p50_ms" not in by_transport["short_poll"]
    assert by_transport["short_poll"]["wire_bytes_per_token"].kind == "timing"
    # long polling pays a request per token: a wider tolerance and no ratio to push delays
    assert "added_delay_p50_vs_fastest" not in by_transport["long_poll"]
    assert (
        by_transport["long_poll"]["added_delay_p50_ms"].rel
        > by_transport["sse"]["added_delay_p50_ms"].rel
    )
    assert by_transport["sse"]["added_delay_p50_vs_fastest"].kind == "timing"
    assert by_transport["sse"]["wire_bytes_per_token"].kind == "exact"
    assert by_transport["sse"]["requests_per_stream"].kind == "exact"


def test_the_baseline_records_median_and_range(tmp_path: Path) -> None:
    runs = [(tmp_path / str(k), synthetic_run(noise=n)) for k, n in enumerate((1.0, 1.4, 1.2))]
    baseline = make_baseline(runs)
    stats = baseline.transports["sse"]["added_delay_p50_ms"]
    assert stats.low < stats.value < stats.high and stats.n == 3
    path = save_baseline(baseline, tmp_path / "b.json")
    data = orjson.loads(path.read_bytes())
    assert data["kind"] == "tokenwire-baseline" and data["schema_version"] == 2
    assert data["scenario"]["name"] == "ci" and data["environment"]["cpu_count"] == 2
    assert load_baseline(path) == baseline


def test_a_saved_scenario_is_rebuilt_exactly() -> None:
    # as a run saves it: validated, so its process counts are the ones it ran with
    injected = validated(replace(CI_SCENARIO, inject=Inject(token_delay_ms=5.0, pad_bytes=8)))
    assert rerun_scenario(injected.to_json()) == injected


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_bad_inputs_exit_2_with_one_line(
    baseline_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = write(synthetic_run(), tmp_path / "run")
    malformed = tmp_path / "malformed.json"
    malformed.write_text("{not json")
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"schema_version": 1}')
    other = write(
        synthetic_run(scenario=replace(CI_SCENARIO, requests=99).to_json()), tmp_path / "other"
    )
    plain = synthetic_run()
    sweep = RunResult(plain.metadata, plain.scenario, [Point(1, plain.phases)], "concurrency")
    swept = write(sweep, tmp_path / "sweep")
    cases = [
        (["check", str(swept), "--baseline", str(baseline_file)], "is a sweep"),
        (["check", str(tmp_path / "nope"), "--baseline", str(baseline_file)], "does not exist"),
        (["check", str(run_dir), "--baseline", str(tmp_path / "none.json")], "does not exist"),
        (["check", str(run_dir), "--baseline", str(malformed)], "is not valid JSON"),
        (["check", str(run_dir), "--baseline", str(foreign)], "is not a tokenwire baseline"),
        (["check", str(other), "--baseline", str(baseline_file)], "different scenario"),
        (["check", str(run_dir), "--reruns", "9"], "must be 0..5"),
        (["baseline", str(tmp_path / "nope")], "does not exist"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        assert needle in _one_line(capsys), argv


def test_a_baseline_refuses_injected_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    injected = replace(CI_SCENARIO, inject=Inject(pad_bytes=8)).to_json()
    run_dir = write(synthetic_run(pad=8, scenario=injected), tmp_path / "run")
    assert main(["baseline", str(run_dir), "--out", str(tmp_path / "b.json")]) == 2
    assert "injected regression" in _one_line(capsys)


TINY = """
name = "tiny"
transports = ["sse", "websocket"]
requests = 6
concurrency = 2
warmup = 1
seed = 1
[source]
preset = "chat"
ttft_ms = 20
tokens_per_s = 200
tokens_per_response = 30
"""


@pytest.mark.slow
def test_real_runs_catch_injected_delay_and_padding(tmp_path: Path) -> None:
    honest, injected = tmp_path / "honest.toml", tmp_path / "injected.toml"
    honest.write_text(TINY)
    injected.write_text(TINY + "[inject]\ntoken_delay_ms = 5\npad_bytes = 8\n")
    for scenario, out in ((honest, "a"), (injected, "b")):
        done = bench("run", "--scenario", str(scenario), "--out", str(tmp_path / out))
        assert done.returncode == 0, done.stderr
    baseline = tmp_path / "baseline.json"
    assert bench("baseline", str(tmp_path / "a"), "--out", str(baseline)).returncode == 0
    done = bench("check", str(tmp_path / "b"), "--baseline", str(baseline), "--reruns", "0")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "wire bytes per token" in done.stdout
    assert "added delay p50" in done.stdout


def test_a_run_on_another_stack_differs_from_a_baseline_saved_before_stacks() -> None:
    """A baseline without `stack` was made on the default stack: a run on it matches, a
    run on another stack (or with other threads) does not."""
    before = {"name": "ci", "requests": 24}
    assert scenario_differences(before, {**before, "stack": "fastapi@uvicorn", "threads": 0}) == []
    other = {**before, "stack": "flask@gunicorn", "workers": 1, "threads": 8}
    assert scenario_differences(before, other) == [
        "stack: baseline 'fastapi@uvicorn', run 'flask@gunicorn'",
        "threads: baseline 0, run 8",
    ]


def repeated_run(noises: Sequence[float], extra_delay_ms: float = 0.0) -> RunResult:
    """A run of the CI scenario in rounds, round k with contention `noises[k]`."""
    rounds = [synthetic_run(noise=n, extra_delay_ms=extra_delay_ms) for n in noises]
    phases = merged_rounds([list(r.points[0].phases.values()) for r in rounds])
    by_name = {phase.transport: phase for phase in phases}
    return RunResult.single(dict(rounds[0].metadata), CI_SCENARIO.to_json(), by_name)


def test_a_change_within_the_noise_between_rounds_is_no_regression(tmp_path: Path) -> None:
    """Against a baseline of three steady rounds: 5 ms more per token in every round is a
    regression, its interval clear of 0; rounds that disagree wildly (x1, x4, x8 delays)
    move the median added delay beyond tolerance, but its interval holds 0: noise."""
    baseline = make_baseline([(tmp_path / "b", repeated_run([1.0, 1.1, 1.2]))])
    assert len(baseline.transports["sse"]["added_delay_p50_ms"].rounds) == 3
    slower = compare_runs(baseline, [repeated_run([1.0, 1.1, 1.2], extra_delay_ms=5.0)])
    found = {(f.transport, f.rule.figure): f for f in slower.regressions}
    sse = found[("sse", "added_delay_p50_ms")]
    assert sse.interval is not None and sse.interval.contains(5.0) and sse.interval.lo > 0
    noisy = compare_runs(baseline, [repeated_run([1.0, 4.0, 8.0])])
    sse_noisy = next(
        f for f in noisy.findings if (f.transport, f.rule.figure) == ("sse", "added_delay_p50_ms")
    )
    assert sse_noisy.rule.status(sse_noisy.baseline, sse_noisy.current) == "regressed"
    assert sse_noisy.status == "ok" and sse_noisy in noisy.within_noise


def test_a_transport_over_quic_has_its_bytes_judged_as_timing() -> None:
    """QUIC's bytes a token follow timing (tokens ready together share a packet; its
    acknowledgements are counted): a tolerance, where TCP's identical counts get none."""
    stats = FigureStats(value=160.0, low=160.0, high=160.0, n=1)
    figures = {"wire_bytes_per_token": stats, "requests_per_stream": stats}
    quic = {r.figure: r for r in rules_for("webtransport", figures, 100.0)}
    tcp = {r.figure: r for r in rules_for("websocket", figures, 100.0)}
    assert quic["wire_bytes_per_token"].kind == "timing" and quic["wire_bytes_per_token"].rel
    assert tcp["wire_bytes_per_token"].kind == "exact"
    assert quic["requests_per_stream"].kind == tcp["requests_per_stream"].kind == "exact"
