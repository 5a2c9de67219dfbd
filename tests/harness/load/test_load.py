"""Load tests: shapes, the per-stream verdict and record transport (pure), then locust itself:
`bench.py load` standalone and with two workers, and the locustfile run directly with tags."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from support import BLOCKING_NAMES, bench

from clients.interface import StreamError, StreamResult
from errors import ErrorKind, ScenarioError
from harness.analyse.results import RunResult, load_run
from harness.cli.load import duration_s
from harness.load.records import Batch, LoadCollection, failure_of, pack, unpack, verdict
from harness.load.shapes import peak_users, users_at
from harness.measure.scenario import Load, scenario_from_dict, validated
from harness.measure.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[3]
QUICK_LOAD = """
name = "{name}"
transports = "{transports}"
order = "{order}"
poll_interval_ms = 50
stream_timeout_s = 30

[source]
preset = "chat"
ttft_ms = 50
tokens_per_s = 300
tokens_per_response = 30

[load]
users = 2
spawn_rate = 10
run_time_s = {run_time}
stop_timeout_s = 5
"""


# --- shapes ---------------------------------------------------------------------------------


def test_steady_holds_its_users_until_the_run_time() -> None:
    load = Load(users=7, run_time_s=10)
    assert [users_at(load, t) for t in (0, 5, 9.99)] == [7, 7, 7]
    assert users_at(load, 10) is None


def test_step_climbs_a_staircase_to_its_users() -> None:
    load = Load(shape="step", users=12, step_users=5, step_time_s=2, run_time_s=20)
    assert [users_at(load, t) for t in (0, 1.9, 2, 4, 6, 19)] == [5, 5, 10, 12, 12, 12]


def test_spike_rises_for_its_window_then_falls_back() -> None:
    load = Load(shape="spike", users=3, spike_users=30, spike_at_s=5, spike_time_s=2, run_time_s=9)
    assert [users_at(load, t) for t in (0, 4.9, 5, 6.9, 7, 8.9, 9)] == [3, 3, 30, 30, 3, 3, None]
    assert peak_users(load) == 30


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"shape": "sawtooth"}, "unknown load.shape 'sawtooth'; allowed: steady, step, spike"),
        ({"users": 0}, "load.users must be a positive integer"),
        ({"run_time_s": 0}, "load.run_time_s must be a positive number"),
        ({"think_time_s": -1}, "load.think_time_s must be 0 or more"),
        ({"users": "many"}, "load.users must be int, got 'many'"),
        ({"hatch_rate": 3}, "[load] allows only shape, users"),
        ({"shape": "spike", "spike_at_s": 25, "run_time_s": 20}, "the spike must end within"),
    ],
)
def test_bad_load_tables_name_the_field(table: dict[str, object], needle: str) -> None:
    with pytest.raises(ScenarioError, match=None) as caught:
        validated(scenario_from_dict({"load": table}))
    assert needle in str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"), [("20", 20), ("20s", 20), ("2m", 120), ("1m30s", 90), ("1.5", 1.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration_s(text) == seconds


# --- verdicts and records ---------------------------------------------------------------------


def stream(indices: list[int], end_tokens: int | None = None, ended: bool = True) -> StreamResult:
    result = StreamResult("sse", "s-1", scheduled_ns=1_000_000_000)
    result.indices = list(indices)
    result.recv_ns = [1_100_000_000 + k * 10_000_000 for k in range(len(indices))]
    result.texts = [f"t{i}" for i in indices]
    result.chunk_sizes = [1] * len(indices)
    result.end_ns = (result.recv_ns[-1] if indices else 1_100_000_000) + 1 if ended else None
    result.end_tokens = end_tokens
    return result


def test_a_complete_stream_passes_with_its_times_and_tokens() -> None:
    judged = verdict(stream([0, 1, 2], end_tokens=3), now_ns=0)
    assert judged.failure is None
    assert judged.ttft_ms == pytest.approx(100.0)
    assert judged.stream_ms == pytest.approx(120.000001)
    assert judged.tokens == 3


@pytest.mark.parametrize(
    ("result", "needle"),
    [
        (stream([0, 2], end_tokens=3), "lost 1 of 3 tokens (first missing index 1)"),
        (stream([0, 1, 3]), "lost 1 of 4 tokens (first missing index 2)"),
        (stream([0, 1, 1, 2], end_tokens=3), "1 tokens arrived twice"),
        (stream([0, 1, 2, 3], end_tokens=3), "1 tokens beyond the 3 the server reported (index 3)"),
        (stream([0, 1], ended=False), "incomplete: the stream ended without a terminal message"),
        (stream([], end_tokens=0), "no token arrived before the terminal message"),
    ],
)
def test_failures_say_what_went_wrong(result: StreamResult, needle: str) -> None:
    assert failure_of(result) == needle


def test_a_transport_error_is_the_failure() -> None:
    result = stream([0])
    result.error = StreamError(ErrorKind.HTTP_STATUS, "HTTP 503 from /v1/sse: busy")
    assert failure_of(result) == "http_status: HTTP 503 from /v1/sse: busy"


def test_records_survive_packing_bit_for_bit() -> None:
    result = stream([0, 1, 2], end_tokens=3)
    result.bytes_sent, result.bytes_received, result.header_bytes = 300, 900, 400
    result.requests, result.empty_polls = 5, 2
    result.error = StreamError(ErrorKind.TIMEOUT, "late")
    assert unpack(pack(7, result)) == (7, result)


def test_the_collection_merges_workers_and_sums_their_cpu() -> None:
    collection = LoadCollection()
    collection.add(Batch(0, "a", [pack(0, stream([0]))]))
    collection.add(Batch(1, "a", [pack(0, stream([0])), pack(1, stream([0]))]))
    assert collection.client_cpu_s() is None  # nobody has finished yet
    collection.add(Batch(0, "a", [], final=True, client_cpu_s=1.5))
    collection.add(Batch.from_wire(Batch(1, "a", [], final=True, client_cpu_s=2.0).to_wire()))
    assert collection.streams_per_worker() == {"0": 1, "1": 2}
    assert collection.client_cpu_s() == 3.5


# --- bench.py load: bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--workers", "99"], "at most 32 local workers, got 99"),
        (["--run-time", "soon"], "expected a duration like 60s, 2m or 1m30s, got 'soon'"),
    ],
)
def test_bad_load_input_exits_2_with_one_line(args: list[str], needle: str) -> None:
    done = bench("load", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert needle in lines[0]


# --- locust runs ----------------------------------------------------------------------------------


def locust_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["Name"]: row for row in csv.DictReader(handle) if row["Name"] != "Aggregated"}


def check_lossless(
    run: RunResult,
    transports: tuple[str, ...],
    rows: dict[str, dict[str, str]],
    phases: bool = True,
) -> None:
    """Every stream of every transport complete, and locust's CSV counted each one once."""
    if phases:
        assert list(run.phases) == list(transports)
    for name in transports:
        summary = run.summaries[name]
        assert summary.streams > 0, name
        assert (summary.errors, summary.tokens_lost, summary.text_mismatches) == (0, 0, 0), name
        assert summary.tokens_received == summary.tokens_emitted > 0, name
        for kind in ("ttft", "stream"):
            row = rows[f"{name} {kind}"]
            assert row["Failure Count"] == "0", (name, kind)
            assert int(row["Request Count"]) == summary.streams, (name, kind)


def quick_load(
    tmp_path: Path, transports: str, order: str, run_time: int, *flags: str
) -> tuple[Path, RunResult]:
    """`bench.py load` of QUICK_LOAD with these settings and flags: its folder and results."""
    scenario = tmp_path / "quick-load.toml"
    scenario.write_text(
        QUICK_LOAD.format(name="quick-load", transports=transports, order=order, run_time=run_time)
    )
    out = tmp_path / "run"
    done = bench("load", "--scenario", str(scenario), *flags, "--out", str(out))
    assert done.returncode == 0, done.stderr + done.stdout
    return out, load_run(out)


@pytest.mark.slow
def test_two_workers_load_every_transport_and_the_master_merges_both(tmp_path: Path) -> None:
    """Interleaved: one locust run (a master, two workers) with every transport's users."""
    out, run = quick_load(tmp_path, "all", "interleaved", 2, "--workers", "2")
    check_lossless(run, BLOCKING_NAMES, locust_rows(out / "locust-all_stats.csv"))
    workers = {r.stream_id.split("-")[2] for p in run.phases.values() for r in p.requests}
    assert workers == {"w0", "w1"}
    locust_meta = run.metadata["load"]["runs"]["all"]["locust"]
    assert locust_meta["workers"] == 2 and locust_meta["workers_finished"] == [0, 1]
    assert all(count > 0 for count in locust_meta["streams_per_worker"].values())
    for name in ("locust-all.html", "locust-all-worker0.log", "locust-all-worker1.log"):
        assert (out / name).is_file(), name
    assert (out / "report.html").is_file()
    assert not (out / "parts").exists()


@pytest.mark.slow
def test_sequential_order_gives_each_transport_its_own_locust_run(tmp_path: Path) -> None:
    out, run = quick_load(tmp_path, "long_poll,websocket", "sequential", 1, "--users", "3")
    for name in ("long_poll", "websocket"):
        check_lossless(run, (name,), locust_rows(out / f"locust-{name}_stats.csv"), phases=False)
        phase = run.phases[name]
        assert phase.server_cpu_s is not None and phase.server_cpu_s > 0  # its own window
        assert phase.client_cpu_s is not None and phase.client_cpu_s > 0
    assert list(run.phases) == ["long_poll", "websocket"]
    assert run.scenario["load"]["users"] == 3


@pytest.mark.slow
def test_the_locustfile_runs_directly_and_tags_select_the_users(
    server: ServerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "locust", "-f", "scenarios/locustfile.py"),
        *("--host", server.base_url, "--headless", "-u", "2", "-r", "10", "-t", "2s"),
        *("--stop-timeout", "5", "--csv", str(tmp_path / "loc"), "--only-summary"),
        *("--tags", "sse", "--tokenwire-out", str(out)),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SSEUser" in done.stderr and "WebSocketUser" not in done.stderr
    check_lossless(load_run(out), ("sse",), locust_rows(tmp_path / "loc_stats.csv"))
