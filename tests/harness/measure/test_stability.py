"""The machine's facts and how quiet it was: known answers from synthetic counters, a CPU
hog the test starts (its core shows as other processes' CPU), and a run during it, which
warns and records why."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import bench

from harness.measure.stability import Snapshot, Stability, machine_facts

HOG = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


@contextmanager
def cpu_hog(seconds: float) -> Iterator[int]:
    """One process that spins on a core for at most `seconds` (then ends by itself),
    stopped by its PID when the block ends. It is started by a shell that leaves at once,
    so it is not this process's child: its CPU is another process's, not the run's own."""
    shell = subprocess.run(
        [
            "sh",
            "-c",
            f'"{sys.executable}" -c "$0" >/dev/null 2>&1 & echo $!',
            HOG.format(s=seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(shell.stdout.strip())
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def snapshot(busy: float, total: float, steal: float, own: float, switches: int) -> Snapshot:
    return Snapshot(busy, total, steal, switches, 1.0, own, switches // 2)


def test_other_processes_cpu_is_busy_time_less_the_runs_own() -> None:
    """10 s on 2 cores: 12 s busy, of which the run's own 5: others kept 0.7 cores busy."""
    quiet = Stability.between(snapshot(0, 0, 0, 0, 0), snapshot(12, 20, 0, 5, 1000), 10.0)
    assert round(quiet.other_cpu_cores or 0, 6) == 0.7 and quiet.busy
    assert quiet.why == "other processes kept 0.70 cores busy on average"
    assert quiet.other_context_switches == 500


def test_steal_over_five_percent_is_busy_and_under_is_not() -> None:
    stolen = Stability.between(snapshot(0, 0, 0, 0, 0), snapshot(5, 20, 1.2, 5, 0), 10.0)
    assert stolen.steal_share == 0.06 and stolen.busy and "steal" in (stolen.why or "")
    fine = Stability.between(snapshot(0, 0, 0, 0, 0), snapshot(5, 20, 0.4, 5, 0), 10.0)
    assert fine.steal_share == 0.02 and not fine.busy and fine.warning() is None


def other_cores(seconds: float) -> float:
    before = Snapshot.take()
    time.sleep(seconds)
    found = Stability.between(before, Snapshot.take(), seconds).other_cpu_cores
    assert found is not None
    return found


def test_a_cpu_hog_shows_as_about_one_core_of_other_processes() -> None:
    """The hog adds about one core to what other processes were using anyway (whatever
    else the machine runs meanwhile, measured just before)."""
    quiet = other_cores(1.0)
    with cpu_hog(30):
        time.sleep(0.5)  # started
        before = Snapshot.take()
        time.sleep(2.0)
        found = Stability.between(before, Snapshot.take(), 2.0)
    assert found.other_cpu_cores is not None and found.other_cpu_cores > 0.7
    assert found.other_cpu_cores - quiet < 1.5  # the hog's one core, not counted twice
    assert found.busy and found.warning() is not None


def test_the_machine_facts_are_read_where_the_kernel_has_them() -> None:
    facts = machine_facts()
    assert facts["logical_cores"] and facts["kernel"]
    assert facts["cpu_model"]  # /proc/cpuinfo on Linux
    assert set(facts) == {"cpu_model", "logical_cores", "frequency_governor", "cpu_mhz", "kernel"}


def test_a_run_on_a_busy_machine_warns_and_records_why(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with cpu_hog(60):
        done = bench(
            "run", "--transports", "sse,chunked", "--requests", "16", "--concurrency", "4",
            "--preset", "instant", "--out", str(out),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "warning: the machine was busy during this run: other processes kept" in " ".join(
        done.stdout.split()
    )
    metadata = json.loads((out / "results.json").read_text())["metadata"]
    assert metadata["stability"]["busy"] and metadata["stability"]["other_cpu_cores"] > 0.5
    assert metadata["hardware"]["logical_cores"] and metadata["machine"] == platform.machine()
    assert "The machine was busy during this run" in (out / "report.html").read_text()
