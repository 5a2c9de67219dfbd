"""Several servers and several client processes: every stream sticks to one server and finds
its timeline there, client processes merge into one result set as if one process had run
it, and the process counts resolve and refuse as documented."""

from __future__ import annotations

import os
import pickle
import queue
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from clients.interface import StreamError, StreamResult
from errors import ClientProcessError, ErrorKind, ScenarioError
from harness.ci.check import rerun_scenario
from harness.measure import event_loop
from harness.measure.browser.client import BROWSER
from harness.measure.client_processes import Inbox
from harness.measure.driver import run_benchmark
from harness.measure.processes import (
    PROCESS_FIELDS,
    auto_processes,
    effective_client_processes,
    split,
)
from harness.measure.records import PhaseRecord
from harness.measure.run.python_clients import PinnedClient
from harness.measure.run.shards import open_shards, shard_count
from harness.measure.scenario import Scenario, load_scenario, validated, with_overrides
from harness.measure.server_process import (
    ServerGroup,
    ServerProcess,
    running_servers,
)
from servers.sources.spec import SourceSpec

FAST = SourceSpec(preset="chat", ttft_ms=5, tokens_per_s=2000, tokens_per_response=30)


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerGroup]:
    with running_servers(FAST, tmp_path_factory.mktemp("two-servers"), 2) as group:
        yield group


class CountingProgress:
    """A progress sink that counts what it is told."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.done: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def phase_started(self, transport: str, total: int) -> None:
        self.totals[transport] = total

    def stream_done(self, transport: str, failed: bool) -> None:
        self.done[transport] += 1
        self.failed[transport] += failed

    def phase_finished(self, transport: str) -> None: ...


def small(transports: tuple[str, ...], servers: int, clients: int, **kwargs: object) -> Scenario:
    base = Scenario(
        transports=transports,
        requests=24,
        concurrency=6,
        warmup=1,
        # a poll the server forgets to wake costs 2 s, not 30
        knobs=(("poll_interval_ms", 20.0), ("long_poll_wait_s", 2.0), ("batch_ms", 0.0)),
        source=FAST,
        server_processes=servers,
        client_processes=clients,
    )
    return with_overrides(base, **kwargs)


def assert_complete(phase: PhaseRecord, requests: int) -> None:
    """Every request exactly once, each with every token the server emitted, in order."""
    records = phase.requests
    assert sorted(r.index for r in records) == list(range(requests))
    assert len({r.stream_id for r in records}) == requests
    for r in records:
        assert r.error_kind is None, (r.stream_id, r.error_kind, r.error_message)
        assert r.source_tokens > 0
        assert r.token_index == list(range(r.source_tokens)), r.stream_id
        assert r.text_mismatches == 0
        assert r.stream_id.endswith(f"-{r.index}") and r.seed == r.index


# --- the rule, and what is refused ---------------------------------------------------------


@pytest.mark.parametrize(("cores", "each"), [(None, 1), (1, 1), (2, 1), (3, 1), (4, 2), (8, 4)])
def test_auto_is_one_per_two_cores(cores: int | None, each: int) -> None:
    assert auto_processes(cores) == each


def test_auto_resolves_by_the_machine_and_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    resolved = validated(Scenario())
    assert (resolved.server_processes, resolved.client_processes) == (4, 4)
    assert resolved.to_json()["server_processes"] == 4  # the scenario JSON of results
    behind_nginx = validated(Scenario(path="nginx"))  # a path fronts one server
    assert (behind_nginx.server_processes, behind_nginx.client_processes) == (1, 4)
    browser = validated(Scenario(client="browser", transports=("sse",), concurrency=6))
    assert (browser.server_processes, browser.client_processes) == (1, 1)
    given = validated(Scenario(server_processes=3, client_processes=2))
    assert (given.server_processes, given.client_processes) == (3, 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert validated(Scenario()).server_processes == validated(Scenario()).client_processes == 1


def test_auto_in_a_scenario_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    path = tmp_path / "s.toml"
    path.write_text('server_processes = "auto"\nclient_processes = 2\n')
    scenario = with_overrides(load_scenario(path))
    assert (scenario.server_processes, scenario.client_processes) == (3, 2)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("server_processes = -1", 'server_processes must be 0 or "auto"'),
        ("client_processes = 65", "or 1 to 64, got 65"),
        ('server_processes = "many"', 'server_processes must be an integer or "auto"'),
        ("client_processes = true", 'client_processes must be an integer or "auto"'),
        (
            'client = "browser"\ntransports = ["sse"]\nclient_processes = 2',
            'use client_processes = 1 with client = "browser"',
        ),
        (
            'client = "browser"\ntransports = ["sse"]\nserver_processes = 2',
            'use server_processes = 1 with client = "browser"',
        ),
        ('path = "nginx"\nserver_processes = 2', "server_processes = 2 needs path = loopback"),
    ],
)
def test_bad_process_counts_are_refused(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ScenarioError) as error:
        with_overrides(load_scenario(path))
    assert needle in str(error.value)


def test_saved_scenarios_repeat_with_their_counts_and_old_ones_with_auto() -> None:
    saved = validated(Scenario(server_processes=2, client_processes=3)).to_json()
    again = rerun_scenario(saved)
    assert (again.server_processes, again.client_processes) == (2, 3)
    older = {k: v for k, v in saved.items() if k not in PROCESS_FIELDS}  # before this field
    assert rerun_scenario(older).client_processes == auto_processes()


def test_concurrency_splits_evenly_and_processes_never_outnumber_streams() -> None:
    assert split(10, 3) == [4, 3, 3]
    assert split(100, 2) == [50, 50]
    assert all(sum(split(c, m)) == c for c in range(1, 40) for m in range(1, 9))
    assert effective_client_processes(4, 3, 100) == 3  # concurrency 3
    assert effective_client_processes(4, 8, 2) == 2  # 2 jobs
    assert effective_client_processes(4, 8, 100, BROWSER.many_processes) == 1


def test_shards_spread_over_servers() -> None:
    assert shard_count(100) == 2 and shard_count(100, 3) == 3 and shard_count(1, 2) == 1
    endpoints = ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    clients = open_shards("sse", Scenario(concurrency=120), endpoints)  # type: ignore[arg-type]
    assert [c.server for c in clients] == [0, 1, 0, 1]  # type: ignore[attr-defined]
    assert all(isinstance(c, PinnedClient) for c in clients)
    rotated = open_shards("sse", Scenario(concurrency=4), endpoints, server_offset=1)  # type: ignore[arg-type]
    assert [c.server for c in rotated] == [1, 0]  # type: ignore[attr-defined]


def test_server_group_sums_cpu_and_memory() -> None:
    servers = tuple(
        SimpleNamespace(base_url=f"u{k}", cpu_seconds=lambda k=k: k + 0.5, rss_bytes=lambda: 10)
        for k in range(3)
    )
    group = ServerGroup(servers)
    assert (group.base_url, group.base_urls, len(group)) == ("u0", ["u0", "u1", "u2"], 3)
    assert group.cpu_seconds() == pytest.approx(4.5) and group.rss_bytes() == 30


def test_results_pickle_for_the_trip_home() -> None:
    result = StreamResult("sse", "r-sse-3", 5, indices=[0, 1], recv_ns=[7, 8], texts=["a", "b"])
    result.error = StreamError(ErrorKind.TIMEOUT, "late")
    assert pickle.loads(pickle.dumps(result)) == result


def test_a_child_that_dies_is_reported_not_awaited() -> None:
    class Dead:
        pid, exitcode = 4242, -9

        def is_alive(self) -> bool:
            return False

    class Silent:
        def get(self, timeout: float) -> object:
            raise queue.Empty

    inbox = Inbox(Silent(), [Dead()], SimpleNamespace(progress=CountingProgress()))  # type: ignore[list-item]
    with pytest.raises(
        ClientProcessError, match=r"client process 0 \(pid 4242\) exited with status -9"
    ):
        inbox.wait("ready")


# --- real runs -----------------------------------------------------------------------------


def test_two_servers_each_serve_streams_and_hold_their_timelines(two_servers: ServerGroup) -> None:
    pids = {httpx.get(f"{url}/healthz").json()["pid"] for url in two_servers.base_urls}
    assert len(pids) == 2  # two processes, two ports
    assert all(isinstance(s, ServerProcess) and s.log_path.exists() for s in two_servers.servers)
    assert {s.log_path.name for s in two_servers.servers} == {"server-0.log", "server-1.log"}  # type: ignore[attr-defined]
    scenario = small(("sse", "long_poll"), servers=2, clients=1)
    progress = CountingProgress()
    phases = event_loop.run(run_benchmark(scenario, two_servers, progress))
    for phase in phases:
        assert_complete(phase, 24)  # no TIMELINE error: each timeline came from its server
        assert phase.setup is not None
        served = phase.setup.streams_per_server
        assert served is not None and len(served) == 2 and min(served) > 0 and sum(served) == 24
        assert (phase.setup.server_processes, phase.setup.client_processes) == (2, 1)
        assert phase.server_cpu_s is not None and phase.server_cpu_s > 0
    assert progress.done == {"sse": 24, "long_poll": 24}


def test_two_client_processes_merge_into_one_result_set(two_servers: ServerGroup) -> None:
    scenario = small(("short_poll",), servers=2, clients=2)
    progress = CountingProgress()
    [phase] = event_loop.run(run_benchmark(scenario, two_servers, progress))
    assert_complete(phase, 24)
    assert phase.setup is not None
    per_process = phase.setup.client_cpu_s_per_process
    assert per_process is not None and len(per_process) == 2 and min(per_process) > 0
    assert phase.client_cpu_s == pytest.approx(sum(per_process))
    assert phase.setup.client_processes == 2
    assert min(phase.setup.streams_per_server or [0]) > 0
    assert progress.totals == {"short_poll": 24}
    assert progress.done == {"short_poll": 24} and progress.failed["short_poll"] == 0
    assert phase.window_end_ns > phase.window_start_ns
    assert all(r.scheduled_ns >= phase.window_start_ns for r in phase.requests)


def test_client_processes_share_one_open_loop_schedule(two_servers: ServerGroup) -> None:
    scenario = small(("sse",), servers=2, clients=2, rate=50.0, arrivals="constant")
    [phase] = event_loop.run(run_benchmark(scenario, two_servers))
    assert_complete(phase, 24)
    # request k was due k / rate after the one window start the parent gave both processes
    for r in phase.requests:
        assert r.scheduled_ns - phase.window_start_ns == round(r.index / 50.0 * 1e9)
