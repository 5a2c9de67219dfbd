"""The clients' HTTP version in a scenario (`http`, `--http`): the values and how they are
written, a sweep over them (the server restarts on each), what each asks of the stack, the
path and the client (refusals in one line), `best` resolved point by point, what the
clients are told, and a run that records each stream's version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import bench

from errors import ScenarioError
from harness.ci.baseline import scenario_differences
from harness.measure.paths import Endpoint, parse_path
from harness.measure.run.shards import client_settings
from harness.measure.scenario import (
    SERVER_AXES,
    SWEEP_AXES,
    Scenario,
    load_scenario,
    validated,
    with_overrides,
)
from harness.measure.scenario.http_versions import client_versions, http_text, resolved
from stacks import DEFAULT, STACKS

HTTP3 = next(s.name for s in STACKS if "3" in s.http_versions)


@pytest.mark.parametrize(
    ("written", "text"),
    [
        ("1.1", "1.1"),
        (1.1, "1.1"),
        (2, "2"),
        ("3", "3"),
        (3, "3"),
        ("auto", "auto"),
        ("best", "best"),
    ],
)
def test_versions_are_text_however_they_are_written(written: object, text: str) -> None:
    assert http_text(written) == text


@pytest.mark.parametrize("written", [4, "h2", True, "", 2.5, None])
def test_anything_else_is_refused_naming_the_choices(written: object) -> None:
    with pytest.raises(ScenarioError, match=r"http must be one of auto, best, 1\.1, 2, 3"):
        http_text(written)


def test_a_scenario_file_and_the_flag_set_it(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'stack = "{HTTP3}"\nhttp = 3\n')
    assert with_overrides(load_scenario(path)).http == "3"
    assert with_overrides(Scenario(), stack=HTTP3, http="2").http == "2"
    assert validated(Scenario()).http == "auto"
    assert validated(Scenario()).to_json()["http"] == "auto"


def test_a_comma_list_is_a_sweep_over_http_that_restarts_the_server(tmp_path: Path) -> None:
    assert "http" in SWEEP_AXES and "http" in SERVER_AXES
    scenario = with_overrides(Scenario(), stack=HTTP3, http="1.1, 2,3")
    assert scenario.sweep is not None and scenario.sweep.values == ("1.1", "2", "3")
    assert [scenario.at(v).http_version() for v in scenario.sweep.values] == ["1.1", "2", "3"]
    path = tmp_path / "s.toml"
    path.write_text(f'stack = "{HTTP3}"\n[sweep]\naxis = "http"\nvalues = [1.1, 2, 3]\n')
    swept = with_overrides(load_scenario(path)).sweep
    assert swept is not None and swept.values == ("1.1", "2", "3")
    with pytest.raises(ScenarioError, match="a comma list of HTTP versions is a sweep over http"):
        with_overrides(Scenario(), stack=HTTP3, http="1.1,3", sweep="concurrency=1,2")


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"http": "3"}, f"http = 3: stack {DEFAULT} speaks HTTP/1.1 only; {HTTP3} speaks HTTP/3"),
        ({"http": "2"}, "speaks HTTP/2, or put nginx-h2 in the path"),
        (
            {"http": "3", "stack": HTTP3, "path": "relay:4g"},
            "path relay:4g lets clients speak HTTP/1.1, 2 only (net: carries QUIC",
        ),
        ({"http": "2", "stack": HTTP3, "path": "nginx"}, "path nginx lets clients speak HTTP/1.1"),
        ({"http": "3", "stack": HTTP3, "path": "nginx-h2"}, "lets clients speak HTTP/1.1, 2 only"),
        (
            {"http": "3", "stack": HTTP3, "client": "browser", "transports": "sse,websocket"},
            "may not open the server's plain ws:// upgrade (websocket)",
        ),
        ({"http": "3", "stack": HTTP3, "server_processes": 2}, "one server process only"),
        ({"sweep": "http=1.1,3"}, "http = 3: stack"),
        ({"http": "2", "stack": HTTP3, "client": "browser"}, "the browser speaks what Chromium"),
        ({"http": "1.1", "path": "nginx-h2", "client": "browser"}, "use http = auto, or 3"),
        ({"http": "3", "stack": HTTP3, "raw_client": True}, "raw_client measures the floor"),
    ],
)
def test_a_version_nothing_in_play_speaks_is_refused_in_one_line(
    changes: dict[str, object], needle: str
) -> None:
    with pytest.raises(ScenarioError) as refused:
        with_overrides(Scenario(), **changes)
    assert needle in str(refused.value) and "\n" not in str(refused.value)


def test_what_each_path_lets_clients_speak() -> None:
    spoken = STACKS.get(HTTP3).http_versions
    assert parse_path("loopback").http_versions(spoken) == ("1.1", "2", "3")
    assert parse_path("net:4g").http_versions(spoken) == ("1.1", "2", "3")
    assert parse_path("relay:4g").http_versions(spoken) == ("1.1", "2")
    assert parse_path("nginx-h2+net:4g").http_versions(spoken) == ("1.1", "2")
    assert parse_path("nginx+net:4g").http_versions(spoken) == ("1.1",)
    assert parse_path("nginx-h2").http_versions(("1.1",)) == ("1.1", "2")  # nginx speaks it
    assert parse_path("loopback").http_versions(("1.1",)) == ("1.1",)


def test_best_is_the_newest_at_each_point() -> None:
    assert resolved("best", "net:rtt=60ms", HTTP3) == "3"
    assert resolved("best", "nginx-h2+net:rtt=60ms", HTTP3) == "2"
    assert resolved("best", "nginx+net:rtt=60ms", HTTP3) == "1.1"
    assert resolved("best", "loopback", DEFAULT) == "1.1"
    assert resolved("auto", "net:4g", HTTP3) == "auto" and resolved("2", "x", DEFAULT) == "2"
    scenario = with_overrides(
        Scenario(), stack=HTTP3, http="best", path="nginx-h2+net:4g,net:4g,nginx+net:4g"
    )
    assert scenario.sweep is not None
    assert [scenario.at(v).http_version() for v in scenario.sweep.values] == ["2", "3", "1.1"]
    assert scenario.speaks_http3() and scenario.server_processes == 1


def test_the_clients_are_told_their_version() -> None:
    assert client_versions("auto", True) == (True, False)
    assert client_versions("auto", False) == (False, False)
    assert client_versions("1.1", True) == (False, False)  # HTTP/1.1 over nginx-h2's TLS
    assert client_versions("2", False) == (True, False)  # h2c
    assert client_versions("3", False) == (False, True)
    three = with_overrides(Scenario(), stack=HTTP3, http="3")
    settings = client_settings(three, Endpoint("http://127.0.0.1:9", ca_file=Path("c.pem")), 4)
    assert settings.http3 and not settings.http2 and settings.ca_file == "c.pem"
    two = with_overrides(Scenario(), stack=HTTP3, http="2")
    assert client_settings(two, "http://127.0.0.1:9", 4).http2


@pytest.mark.slow
def test_a_run_records_each_streams_version(tmp_path: Path) -> None:
    """One run over HTTP/1.1, HTTP/2 (h2c) and HTTP/3, on the stack that speaks all three:
    every stream whole, its version recorded; HTTP/3's streams count their losses; the QUIC
    certificate made in the run's folder."""
    out = tmp_path / "run"
    flags = f"--stack {HTTP3} --http 1.1,2,3 --requests 4 --concurrency 2 --warmup 0"
    source = ("--transports", "sse,chunked", "--preset", "instant")
    done = bench("run", *flags.split(), *source, "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    seen = {}
    for point in results["points"]:
        for transport, entry in point["transports"].items():
            requests = entry["phase"]["requests"]
            assert all(r["error_kind"] is None for r in requests), transport
            assert all(len(r["token_index"]) == r["source_tokens"] > 0 for r in requests)
            seen[point["value"], transport] = {r["http_version"] for r in requests}
            lost = [r["packets_lost"] for r in requests]
            if point["value"] == "3":  # counted (0 unless a late timer declared one lost)
                assert all(n is not None and n >= 0 for n in lost)
            else:  # no QUIC, nothing to count
                assert lost == [None] * len(lost)
    assert seen == {(v, t): {f"HTTP/{v}"} for v in ("1.1", "2", "3") for t in ("sse", "chunked")}
    assert (out / "quic" / "cert.pem").exists()


def test_the_load_test_refuses_http3_in_one_line(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'transports = ["sse"]\nstack = "{HTTP3}"\nhttp = "3"\n')
    done = bench("load", "--scenario", str(scenario), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "blocking clients (locust), which speak HTTP/1.1 and 2" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_run_over_http3_never_matches_a_baseline_saved_before_http() -> None:
    before = {"transports": ["sse"], "requests": 10}
    assert scenario_differences(before, {**before, "http": "3"}) == [
        "http: baseline 'auto', run '3'"
    ]
    assert scenario_differences(before, {**before, "http": "auto"}) == []
