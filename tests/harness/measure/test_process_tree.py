"""A server's CPU and memory are its whole process tree's: real processes (a parent that
starts a child, as gunicorn's master starts its workers) whose child burns CPU or holds
memory; the child's share must be counted, alive or exited, and a descendant that vanishes
must not break the reading."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.measure import process_tree
from harness.measure.peak_memory import PeakSampler
from harness.measure.process_tree import tree_cpu_seconds, tree_pids, tree_rss_bytes
from harness.measure.server_process import ServerProcess, stop_process

BURN_S = 0.5  # CPU seconds the child spends
BURN = f"""
import sys, time
while time.process_time() < {BURN_S}:
    pass
print("burnt", flush=True)
if sys.argv[1] == "stay":
    time.sleep(60)
"""
HOLD = """
import time
block = bytearray(64 * 2**20)  # 64 MiB, touched
for i in range(0, len(block), 4096):
    block[i] = 1
print("holding", flush=True)
time.sleep(60)
"""
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
if sys.argv[2] == "exit":
    child.wait()  # reaped: its CPU is now in this process's children_user/children_system
    print("reaped", flush=True)
time.sleep(60)
"""


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; each is stopped by its PID afterwards, its children first
    (they are reaped once their parent is gone)."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        try:
            children = psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        stop_process(process, 5.0)
        psutil.wait_procs(children, timeout=5)


def parent_of(code: str, mode: str, *extra: str) -> list[str]:
    return [sys.executable, "-c", PARENT, code, mode, *extra]


def start(spawn: list[subprocess.Popen[str]], command: list[str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    spawn.append(process)
    return process


def own_cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def test_a_live_childs_cpu_counts_as_the_servers(spawn: list[subprocess.Popen[str]]) -> None:
    parent = start(spawn, parent_of(BURN, "stay"))
    assert parent.stdout is not None and parent.stdout.readline().strip() == "burnt"
    assert own_cpu(parent.pid) < BURN_S  # the parent itself only started the child
    assert tree_cpu_seconds(parent.pid) >= own_cpu(parent.pid) + BURN_S * 0.95
    server = ServerProcess(process=parent, base_url="http://127.0.0.1:1", log_path=Path("x"))
    assert server.cpu_seconds() >= BURN_S * 0.95  # what the driver reads, by the server's PID
    assert len(tree_pids(parent.pid)) == 2


def test_an_exited_and_reaped_childs_cpu_still_counts(spawn: list[subprocess.Popen[str]]) -> None:
    parent = start(spawn, parent_of(BURN, "exit"))
    assert parent.stdout is not None
    assert [parent.stdout.readline().strip() for _ in range(2)] == ["burnt", "reaped"]
    assert tree_pids(parent.pid) == [parent.pid]  # the child is gone
    assert own_cpu(parent.pid) < BURN_S
    assert tree_cpu_seconds(parent.pid) >= BURN_S * 0.95


def test_a_descendant_that_vanishes_is_skipped(
    spawn: list[subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = start(spawn, [sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    listed = psutil.Process(gone.pid)  # listed while it lived ...
    gone.wait()  # ... then exited and reaped before it is read
    root = psutil.Process(parent.pid)
    monkeypatch.setattr(process_tree, "_tree", lambda pid: (root, [listed]))
    assert tree_cpu_seconds(parent.pid) == pytest.approx(own_cpu(parent.pid), abs=0.05)
    assert tree_rss_bytes(parent.pid) == pytest.approx(root.memory_info().rss, rel=0.2)


def test_a_server_that_is_gone_is_an_error_not_zero() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    with pytest.raises(psutil.NoSuchProcess):
        tree_cpu_seconds(done.pid)


def test_memory_and_peak_memory_count_the_workers(spawn: list[subprocess.Popen[str]]) -> None:
    """A "server" (its command line names servers.run, as PeakSampler looks for) whose
    child holds 64 MiB: the child's command line does not name the server, as granian's
    spawned workers do not."""
    with PeakSampler(interval_s=0.02, discover_every=1) as sampler:
        parent = start(spawn, parent_of(HOLD, "stay", "servers.run"))
        assert parent.stdout is not None and parent.stdout.readline().strip() == "holding"
        rss = tree_rss_bytes(parent.pid)
        sampler.sample(discover=True)
    assert rss >= psutil.Process(parent.pid).memory_info().rss + 60 * 2**20
    assert set(sampler.peaks) == set(tree_pids(parent.pid))  # the server and its worker
    assert sampler.peak_bytes is not None and sampler.peak_bytes >= 64 * 2**20
