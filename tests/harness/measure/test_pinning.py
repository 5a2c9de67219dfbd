"""Pinning a run: the server processes on `--server-cpus`, the driver's clients on
`--client-cpus`, each read back from the kernel; the run records both, and the harness's
own process is as it was afterwards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import bench

from errors import ScenarioError
from harness.measure.scenario import Scenario, validated
from harness.pipeline import _clients_pinned

SERVER, CLIENT = sorted(os.sched_getaffinity(0))[:2]  # the machine has two cores at least


def test_a_pinned_run_puts_the_server_on_its_cpus_and_records_both(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = bench(
        "run", "--transports", "sse,short_poll", "--requests", "4", "--concurrency", "2",
        "--preset", "instant", "--server-cpus", str(SERVER), "--client-cpus", str(CLIENT),
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    # the kernel's own word on the server process, read back while it ran
    assert f", on CPUs {SERVER}\n" in done.stdout
    scenario = json.loads((out / "results.json").read_text())["scenario"]
    assert (scenario["server_cpus"], scenario["client_cpus"]) == (str(SERVER), str(CLIENT))


def test_the_clients_are_pinned_for_the_run_only() -> None:
    before = os.sched_getaffinity(0)
    with _clients_pinned(str(CLIENT)):
        assert os.sched_getaffinity(0) == {CLIENT}
    assert os.sched_getaffinity(0) == before
    with _clients_pinned(""):
        assert os.sched_getaffinity(0) == before


def test_a_scenario_with_cpus_the_machine_lacks_is_refused() -> None:
    with pytest.raises(ScenarioError, match="server_cpus: CPU"):
        validated(Scenario(server_cpus="9999"))
    with pytest.raises(ScenarioError, match=r"client_cpus: .* not a CPU list"):
        validated(Scenario(client_cpus="x"))
