"""The intermediaries as path layers. `idle-timeout:S`: on a real relay it closes a stream
that stays silent for S seconds before its first token, unless the server's heartbeat
keeps bytes moving; the probe names what it saw, and a run counts the closes.
`cdn-buffer`: a run through it sees the answer in one lump when the server leaves out its
streaming headers, and a stream when it sends them; the probe says `buffered`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import bench
import harness.measure.paths.nginx as nginx
from errors import ScenarioError
from harness.measure.paths import Endpoint, parse_path
from harness.measure.paths.intermediaries import Intermediary
from harness.measure.server_process import ServerProcess, running_server
from servers.sources.spec import SourceSpec

# the first token exactly 2 s after the request (steady: no jitter), then 20 tokens
SLOW = SourceSpec(preset="steady", ttft_ms=2000, tokens_per_response=20)


@pytest.mark.parametrize(("text", "seconds"), [("idle-timeout:5", 5.0), ("idle-timeout:0.5s", 0.5)])
def test_the_layer_takes_seconds(text: str, seconds: float) -> None:
    (layer,) = parse_path(text).layers
    assert isinstance(layer, Intermediary) and layer.spec.idle_s == seconds
    assert layer.name == text


@pytest.mark.parametrize("text", ["idle-timeout", "idle-timeout:0", "idle-timeout:soon"])
def test_a_bad_idle_time_is_refused(text: str) -> None:
    with pytest.raises(ScenarioError, match=r"idle time in seconds, e\.g\. idle-timeout:5"):
        parse_path(text)


def test_it_composes_with_other_layers() -> None:
    spec = parse_path("idle-timeout:5+net:rtt=40ms")
    assert [layer.name for layer in spec.layers] == ["idle-timeout:5", "net:rtt=40ms"]


@pytest.mark.parametrize(("text", "kib"), [("cdn-buffer", 64.0), ("cdn-buffer:8", 8.0)])
def test_the_cdn_layer_takes_kib(text: str, kib: float) -> None:
    (layer,) = parse_path(text).layers
    assert isinstance(layer, Intermediary) and layer.spec.hold_kib == kib
    assert layer.parameters()["hold_kib"] == kib


def test_a_bad_hold_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"the KiB it holds, e\.g\. cdn-buffer:64"):
        parse_path("cdn-buffer:lots")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    logs = tmp_path_factory.mktemp("idle")
    quick = SourceSpec(preset="chat", ttft_ms=50, tokens_per_s=100, tokens_per_response=30)
    naive = ("--streaming-headers", "0")
    with (
        running_server(SLOW, logs / "silent.log") as silent,
        running_server(SLOW, logs / "beat.log", extra_args=("--heartbeat-s", "0.3")) as beat,
        running_server(quick, logs / "naive.log", extra_args=naive) as naive_server,
        running_server(quick, logs / "streaming.log") as streaming,
    ):
        yield {"silent": silent, "beat": beat, "naive": naive_server, "streaming": streaming}


def probe(capsys: pytest.CaptureFixture[str], url: str, path: str = "idle-timeout:1") -> dict:
    args = ["probe", url, "--json", "--repeat", "1", "--path", path, "--timeout", "20"]
    bench.main(args)
    report: dict = orjson.loads(capsys.readouterr().out)
    return report


def test_probe_names_the_idle_timeout_and_the_heartbeat_fixes_it(
    capsys: pytest.CaptureFixture[str], servers: dict[str, ServerProcess]
) -> None:
    cut = probe(capsys, servers["silent"].base_url + "/v1/sse?seed=1")
    assert [p["code"] for p in cut["problems"]] == ["idle_timeout"], cut
    assert cut["events"] == 0
    kept = probe(capsys, servers["beat"].base_url + "/v1/sse?seed=1")
    assert (kept["verdict"], kept["problems"]) == ("streams", []), kept
    assert kept["events"] >= 20 and kept["terminal"]


@pytest.mark.slow
def test_a_run_through_it_fails_every_silent_stream_and_none_with_a_heartbeat(
    tmp_path: Path,
) -> None:
    """Two streams each way: without the heartbeat both are cut before their first token
    (the relay counts two idle closes); with it both complete."""
    outcomes = {}
    for name, extra in (("silent", []), ("beat", ["--heartbeat-s", "0.3"])):
        out = tmp_path / name
        args = ["run", "--transports", "sse", "--requests", "2", "--preset", "steady"]
        args += ["--ttft-ms", "2000", "--tokens-per-response", "20", "--warmup", "0"]
        args += ["--path", "idle-timeout:1", "--out", str(out), "--quiet", *extra]
        bench.main(args)
        results = orjson.loads((out / "results.json").read_bytes())
        phase = results["transports"]["sse"]["phase"]
        errors = [r["error_kind"] for r in phase["requests"]]
        stats = phase["path_parameters"]["idle-timeout:1"]["relay_stats"]
        outcomes[name] = (errors, stats["idle_closes"])
    assert outcomes["silent"][1] == 2 and all(outcomes["silent"][0]), outcomes
    assert outcomes["beat"] == ([None, None], 0), outcomes


def test_probe_through_the_cdn_sees_the_lump_unless_the_headers_ask_otherwise(
    capsys: pytest.CaptureFixture[str], servers: dict[str, ServerProcess]
) -> None:
    held = probe(capsys, servers["naive"].base_url + "/v1/sse?seed=2", "cdn-buffer")
    assert [p["code"] for p in held["problems"]] == ["buffered"], held
    passed = probe(capsys, servers["streaming"].base_url + "/v1/sse?seed=2", "cdn-buffer")
    assert (passed["verdict"], passed["problems"]) == ("streams", []), passed


@pytest.mark.slow
def test_a_run_through_the_cdn_gets_each_answer_in_one_lump(tmp_path: Path) -> None:
    """Without the streaming headers every token of a stream arrives in the same read, at
    the end (TTFT equals E2E); with them the stream is untouched. The relay counts what it
    held."""
    lumps = {}
    for name, headers in (("naive", "false"), ("streaming", "true")):
        scenario = tmp_path / f"{name}.toml"
        scenario.write_text(f"streaming_headers = {headers}\n")
        out = tmp_path / name
        args = ["run", "--scenario", str(scenario), "--transports", "sse,chunked"]
        args += ["--requests", "3", "--warmup", "0", "--preset", "chat", "--ttft-ms", "50"]
        args += ["--tokens-per-response", "30", "--path", "cdn-buffer", "--out", str(out)]
        assert bench.main([*args, "--quiet"]) == 0
        results = orjson.loads((out / "results.json").read_bytes())
        for transport in ("sse", "chunked"):
            phase = results["transports"][transport]["phase"]
            reads = [len(set(r["recv_ns"])) for r in phase["requests"]]
            hold = phase["path_parameters"]["cdn-buffer"]["relay_stats"]["cdn_hold"]
            lumps[name, transport] = (reads, hold["held"])
    for transport in ("sse", "chunked"):  # the relay's counts are the whole run's
        assert lumps["naive", transport] == ([1, 1, 1], 6), lumps
        reads, held = lumps["streaming", transport]
        assert held == 0 and min(reads) > 10, lumps


needs_nginx = pytest.mark.skipif(
    not (nginx.DEBIAN_NGINX.is_file() or shutil.which("nginx")),
    reason="nginx is not installed (apt-get install nginx; .ci/run installs it)",
)


def test_nginx_gzip_compresses_the_streamed_types(tmp_path: Path) -> None:
    config = nginx.render_config(
        tmp_path, 8080, Endpoint("http://127.0.0.1:8000"), False, (1, 26, 0), gzip=True
    )
    assert "gzip on;" in config and "text/event-stream" in config
    assert "gzip on;" not in nginx.render_config(
        tmp_path, 8080, Endpoint("http://127.0.0.1:8000"), False, (1, 26, 0)
    )


@needs_nginx
def test_probe_through_nginx_gzip_sees_the_lump_of_a_buffered_response(
    capsys: pytest.CaptureFixture[str], servers: dict[str, ServerProcess]
) -> None:
    """nginx buffers a response that does not say X-Accel-Buffering: no, and gzips what it
    holds: one compressed lump. One that says it is passed on as it comes, and nginx's gzip
    flushes each piece: a compressed stream that streams."""
    gzip = ("--header", "Accept-Encoding: gzip")
    args = ["--json", "--repeat", "1", "--path", "nginx-gzip", "--timeout", "20", *gzip]
    bench.main(["probe", servers["naive"].base_url + "/v1/sse?seed=3", *args])
    held = orjson.loads(capsys.readouterr().out)
    assert [p["code"] for p in held["problems"]] == ["compressed"], held
    bench.main(["probe", servers["streaming"].base_url + "/v1/sse?seed=3", *args])
    passed = orjson.loads(capsys.readouterr().out)
    assert passed["headers"]["content-encoding"] == "gzip"
    assert (passed["verdict"], passed["problems"]) == ("streams", []), passed
