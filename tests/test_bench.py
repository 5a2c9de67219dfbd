"""`bench.py` as a user runs it: bad input exits 2 with one line; a small run writes results."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from support import TRANSPORT_NAMES, bench

from bench import main
from harness.analyse.results import SCHEMA_VERSION
from stacks import DEFAULT as DEFAULT_STACK

SUMMARY_DISTRIBUTIONS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "added_delay_ms")
SUMMARY_NUMBERS = (
    "tokens_per_s",
    "aggregate_tokens_per_s",
    "wire_bytes_per_token",
    "requests_per_stream",
    "empty_polls",
    "server_cpu_ms_per_1k_tokens",
    "client_cpu_ms_per_1k_tokens",
    "tokens_emitted",
    "tokens_received",
    "tokens_lost",
    "tokens_duplicated",
    "errors",
)


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


BAD_INPUTS = [
    (["run", "--transports", "pigeon"], "unknown transport(s) pigeon; allowed: all, short_poll"),
    (["run", "--transports", ""], "no transport given"),
    (["run", "--preset", "turbo"], "invalid choice: 'turbo'"),
    (["run", "--requests", "0"], "must be a positive integer, got 0"),
    (["run", "--requests", "-3"], "must be a positive integer, got -3"),
    (["run", "--concurrency", "many"], "expected a positive integer, got 'many'"),
    (["run", "--poll-interval-ms", "0"], "must be a positive number"),
    (["run", "--framing", "xml"], "invalid choice: 'xml'"),
    (["run", "--scenario", "nope.toml"], "scenario file nope.toml does not exist"),
    (["run", "--bogus"], "unrecognized arguments: --bogus"),
    (["run", "--server-processes", "-1"], "must be 0 or more, got -1"),
    (["run", "--client-processes", "65"], "at most 64 processes, got 65"),
    (["run", "--client-processes", "lots"], "allowed: auto, 0 for auto, 1 to 64"),
    (
        ["run", "--client", "browser", "--transports", "sse", "--client-processes", "2"],
        'use client_processes = 1 with client = "browser"',
    ),
    (["run", "--path", "nginx", "--server-processes", "2"], "needs path = loopback"),
    (["serve", "--port", "70000"], "port must be 0..65535, got 70000"),
    (["serve", "--port", "http"], "expected a port number, got 'http'"),
    (["serve", "--host", "10.0.0.1"], "not a loopback address"),
    (["fly"], "invalid choice: 'fly'"),
    ([], "the following arguments are required: command"),
    (["probe", "ftp://example.com/x"], "the scheme must be http, https, ws or wss"),
    (["probe", "http://"], "no host"),
    (["probe", "http://127.0.0.1:1/", "--header", "Authorization: Bearer sk-123"], "credential"),
    (["probe", "http://127.0.0.1:1/", "--header", "X-Api-Key: 123"], "credential"),
    (["probe", "http://127.0.0.1:1/", "--header", "no colon"], "'Name: value'"),
    (
        ["probe", "http://127.0.0.1:1/", "--header-from-env", "Authorization=Bearer sk-123"],
        "must name",
    ),
    (
        [
            "probe",
            "http://127.0.0.1:1/",
            "--header-from-env",
            "Authorization=Bearer $PROBE_UNSET_VAR",
        ],
        "PROBE_UNSET_VAR is not set",
    ),
    (["probe", "http://127.0.0.1:1/", "--data", "{not json"], "--data is not valid JSON"),
    (
        ["probe", "http://127.0.0.1:1/", "--data", "@/nonexistent/body.json"],
        "cannot read --data file",
    ),
    (["probe", "http://127.0.0.1:1/", "--kind", "websocket"], "needs a ws:// or wss:// URL"),
    (["probe", "ws://127.0.0.1:1/", "--kind", "sse"], "speaks WebSocket"),
    (["probe", "http://127.0.0.1:1/", "--kind", "xml"], "invalid choice: 'xml'"),
    (["probe", "http://127.0.0.1:1/", "--repeat", "0"], "must be a positive integer"),
    (["probe", "http://user:pw@127.0.0.1:1/"], "must not carry credentials"),
]


@pytest.mark.parametrize(("args", "needle"), BAD_INPUTS, ids=lambda v: " ".join(v) or "none")
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0]
    assert "sk-123" not in err  # a refused credential is never echoed


def test_bad_scenario_fields_exit_2(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text('requests = 5\nspeed = "fast"\n')
    done = bench("run", "--scenario", str(scenario))
    assert done.returncode == 2
    assert "unknown scenario field(s) speed" in done.stderr
    scenario.write_text("requests = [\n")
    done = bench("run", "--scenario", str(scenario))
    assert done.returncode == 2 and "not valid TOML" in done.stderr


def test_busy_port_exits_2(busy_port: int) -> None:
    done = bench("serve", "--port", str(busy_port))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{busy_port}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_small_run_writes_complete_results(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = bench(
        "run",
        "--transports", "all",
        "--requests", "6",
        "--concurrency", "3",
        "--warmup", "1",
        "--preset", "chat",
        "--ttft-ms", "30",
        "--tokens-per-s", "300",
        "--tokens-per-response", "30",
        "--poll-interval-ms", "20",
        "--out", str(out),
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("results.json", "summary.csv", "ttft_cdf.png", "added_delay.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "server.log").exists() or (out / "server-0.log").exists()  # auto: per core
    results = orjson.loads((out / "results.json").read_bytes())
    assert results["schema_version"] == SCHEMA_VERSION
    assert results["metadata"]["cpu_count"] >= 1
    assert results["metadata"]["packages"]["fastapi"]
    assert results["scenario"]["requests"] == 6
    assert (results["scenario"]["stack"], results["scenario"]["threads"]) == (DEFAULT_STACK, 0)
    assert list(results["transports"]) == list(TRANSPORT_NAMES)
    for name, entry in results["transports"].items():
        summary = entry["summary"]
        for key in SUMMARY_DISTRIBUTIONS:
            assert set(summary[key]) >= {"p50", "p90", "p99", "mean", "max"}, (name, key)
            assert summary[key]["p50"] is not None, (name, key)
        for key in SUMMARY_NUMBERS:
            assert isinstance(summary[key], int | float), (name, key)
        assert summary["tokens_lost"] == summary["tokens_duplicated"] == summary["errors"] == 0
        assert summary["tokens_received"] == summary["tokens_emitted"] > 0
        assert len(entry["phase"]["requests"]) == 6
        stack = {"name": DEFAULT_STACK, "http_versions": ["1.1"], "workers": None, "threads": None}
        assert entry["phase"]["stack"] == stack  # the default stack, as run
    assert results["transports"]["sse"]["summary"]["requests_per_stream"] == 1
    assert results["transports"]["short_poll"]["summary"]["requests_per_stream"] > 2
    header = (out / "summary.csv").read_text().splitlines()[0]
    assert header.startswith("transport,ttft_ms_p50")
    assert "scenario default" in done.stdout and "lost / dup" in done.stdout


@pytest.mark.slow
def test_a_run_over_two_servers_and_two_client_processes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = bench(
        "run",
        "--transports", "sse,long_poll",
        "--requests", "20",
        "--concurrency", "6",
        "--warmup", "1",
        "--preset", "chat",
        "--ttft-ms", "20",
        "--tokens-per-s", "500",
        "--tokens-per-response", "20",
        "--long-poll-wait-s", "2",
        "--server-processes", "2",
        "--client-processes", "2",
        "--out", str(out),
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "server-0.log").exists() and (out / "server-1.log").exists()
    results = orjson.loads((out / "results.json").read_bytes())
    assert results["metadata"]["processes"]["server"] == results["scenario"]["server_processes"]
    assert results["scenario"]["client_processes"] == 2
    for entry in results["transports"].values():
        summary, setup = entry["summary"], entry["phase"]["setup"]
        assert summary["tokens_received"] == summary["tokens_emitted"] > 0
        assert summary["errors"] == summary["tokens_lost"] == 0
        assert (setup["server_processes"], setup["client_processes"]) == (2, 2)
        assert min(setup["streams_per_server"]) > 0
        assert sorted(r["index"] for r in entry["phase"]["requests"]) == list(range(20))
