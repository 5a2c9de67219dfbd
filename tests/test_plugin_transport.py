"""A seventh transport end to end, brought without editing the project: `echo` lives in
tests/plugins/ (its server side, its client side, its registry entry) and reaches every
part of `bench.py` through `TOKENWIRE_TRANSPORTS`, which registers it with
`with_transport`: scenario validation and the CLI's choices, the server process and the
clients, results, the report, `compare`, `baseline` and `check`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.measure.server_process import PROJECT_ROOT
from transports import PLUGINS_ENV, TRANSPORTS

# region end-to-end (shown in docs/adding-a-transport.md)
PLUGIN = "tests.plugins.echo_transport:ECHO"
RUN = ("--transports", "echo,sse", "--requests", "8", "--concurrency", "2", "--warmup", "1")


def bench(*args: str, plugin: str | None = PLUGIN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != PLUGINS_ENV}
    if plugin is not None:
        env[PLUGINS_ENV] = plugin
    return subprocess.run(
        [sys.executable, "bench.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_a_plugin_transport_runs_through_every_command(tmp_path: Path) -> None:
    assert "echo" not in TRANSPORTS  # this process never registered it
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        done = bench("run", *RUN, "--preset", "instant", "--out", str(run))
        assert done.returncode == 0, done.stderr
    results = json.loads((runs[0] / "results.json").read_text())
    echo = results["transports"]["echo"]
    assert echo["phase"]["kind"] == "push"
    assert len(echo["phase"]["requests"]) == 8
    summary = echo["summary"]
    assert summary["errors"] == 0 and summary["tokens_lost"] == 0
    assert summary["tokens_duplicated"] == 0
    assert summary["tokens_received"] == summary["tokens_emitted"] > 0
    assert "echo" in (runs[0] / "report.html").read_text()

    redrawn = bench("report", str(runs[0]))
    assert redrawn.returncode == 0, redrawn.stderr
    compared = bench("compare", str(runs[0]), str(runs[1]), "--out", str(tmp_path / "cmp"))
    assert compared.returncode == 0, compared.stderr
    assert "echo" in (tmp_path / "cmp" / "compare.html").read_text()
    baseline = tmp_path / "baseline.json"
    # a baseline of both runs, whose spread is its tolerance: the check judges the plugin's
    # figures, not the timing noise of two 8-stream runs on a shared machine
    made = bench("baseline", *map(str, runs), "--out", str(baseline))
    assert made.returncode == 0, made.stderr
    assert "echo" in json.loads(baseline.read_text())["transports"]
    checked = bench("check", str(runs[1]), "--baseline", str(baseline))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "echo" in checked.stdout
    # endregion


def test_without_the_plugin_the_transport_is_unknown() -> None:
    done = bench("run", "--transports", "echo", "--requests", "1", plugin=None)
    assert done.returncode == 2
    assert "echo" in done.stderr and "sse" in done.stderr  # the known ones are listed


def test_a_plugin_that_is_not_a_transport_is_refused_in_one_line() -> None:
    done = bench("run", "--help", plugin="transports:Kind")
    assert done.returncode != 0
    assert "TOKENWIRE_TRANSPORTS: 'transports:Kind' is not a Transport" in done.stderr
