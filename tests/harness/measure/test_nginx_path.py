"""The nginx path layers (harness/measure/paths/nginx.py) with Debian's real nginx: every
transport end to end through the real driver, HTTP/2 on nginx-h2, the streaming headers'
effect, and nginx stopped by PID however the run ends. The streaming-headers knob of the
server and the scenario is tested here too."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import psutil
import pytest
from support import bench, serve

import harness.measure.paths.nginx as nginx
from errors import ScenarioError, ServerStartError
from harness.measure.driver import run_benchmark
from harness.measure.paths import Endpoint, parse_path
from harness.measure.records import PhaseRecord
from harness.measure.scenario import (
    SERVER_AXES,
    Scenario,
    parse_sweep,
    scenario_from_dict,
    validated,
    with_overrides,
)
from harness.measure.server_process import ServerProcess
from servers.push_response import STREAMING_HEADERS
from servers.sources.spec import SourceSpec
from transports import TRANSPORTS

HAVE_NGINX = nginx.DEBIAN_NGINX.is_file() or shutil.which("nginx") is not None
needs_nginx = pytest.mark.skipif(
    not HAVE_NGINX, reason="nginx is not installed (apt-get install nginx; .ci/run installs it)"
)
HTTP_TRANSPORTS = ("short_poll", "long_poll", "sse", "chunked")
PUSH_HTTP = ("sse", "chunked")
# slow enough that "the first token long before the end" cannot happen by accident:
# ~1.5 s of tokens after a 50 ms first one
SLOW = SourceSpec(preset="chat", ttft_ms=50, tokens_per_s=10, tokens_per_response=16)


def small_scenario(path: str, transports: tuple[str, ...] = TRANSPORTS.names()) -> Scenario:
    scenario = Scenario(
        transports=transports,
        requests=4,
        concurrency=2,
        warmup=0,
        stream_timeout_s=60,
        path=path,
    )
    return validated(scenario.with_knob("poll_interval_ms", 20).with_knob("long_poll_wait_s", 10))


def assert_complete(phases: list[PhaseRecord]) -> None:
    """Every stream whole: no error, every source token once, in order, with its text."""
    assert phases
    for phase in phases:
        assert len(phase.requests) == 4, phase.transport
        for record in phase.requests:
            where = f"{phase.transport} stream {record.index}"
            assert record.error_kind is None, f"{where}: {record.error_message}"
            assert record.token_index == list(range(record.source_tokens)), where
            assert record.source_tokens > 0, where
            assert record.text_mismatches == 0, where


def nginx_pids(work_dir: Path) -> list[int]:
    """The running nginx master (from its pid file in the layer's folder) and its workers."""
    master = int((work_dir / "nginx.pid").read_text().strip())
    return [master, *(child.pid for child in psutil.Process(master).children(recursive=True))]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def ttft_and_e2e_s(record: object) -> tuple[float, float]:
    first = (record.recv_ns[0] - record.scheduled_ns) / 1e9  # type: ignore[attr-defined]
    end = (record.end_ns - record.scheduled_ns) / 1e9  # type: ignore[attr-defined]
    return first, end


async def push_timings_through_nginx(
    server: ServerProcess, tmp_path: Path
) -> list[tuple[str, float, float]]:
    """Two streams of each push HTTP transport through nginx to `server`, every one without
    error: (transport, TTFT s, E2E s) of each."""
    scenario = replace(small_scenario("nginx", PUSH_HTTP), requests=2)
    with parse_path("nginx").open(Endpoint(server.base_url), tmp_path) as endpoint:
        phases = await run_benchmark(scenario, server, endpoint=endpoint)
    timings = []
    for phase in phases:
        for record in phase.requests:
            assert record.error_kind is None, record.error_message
            timings.append((phase.transport, *ttft_and_e2e_s(record)))
    return timings


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve(tmp_path_factory, "slow", SLOW)


@pytest.fixture(scope="module")
def naive_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The same source, its push responses without the streaming headers."""
    yield from serve(tmp_path_factory, "naive", SLOW, "--streaming-headers", "0")


# --- every transport, end to end ------------------------------------------------------------


@needs_nginx
@pytest.mark.slow
async def test_every_transport_streams_whole_through_nginx(
    server: ServerProcess, tmp_path: Path
) -> None:
    path = parse_path("nginx")
    scenario = small_scenario("nginx")
    with path.open(Endpoint(server.base_url), tmp_path) as endpoint:
        assert endpoint.base_url.startswith("http://127.0.0.1:")
        assert endpoint.base_url != server.base_url
        assert not endpoint.http2 and endpoint.ca_file is None
        phases = await run_benchmark(scenario, server, endpoint=endpoint)
    # every transport over TCP (nginx carries no QUIC: `all` leaves webtransport out)
    assert [p.transport for p in phases] == [t.name for t in TRANSPORTS if not t.quic]
    assert_complete(phases)
    for phase in phases:
        if phase.transport in HTTP_TRANSPORTS:
            assert {r.http_version for r in phase.requests} == {"HTTP/1.1"}
    # the streams really went through nginx: its own access log has them
    access = (tmp_path / "path-0-nginx" / nginx.ACCESS_LOG).read_text()
    assert '"POST /v1/sse' in access and '"GET /v1/ws HTTP/1.1" 101' in access
    parameters = path.parameters()["nginx"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", parameters["nginx_version"])
    assert parameters["proxy_buffering"].startswith("on")


@needs_nginx
@pytest.mark.slow
async def test_nginx_h2_speaks_http2_to_the_http_transports(
    server: ServerProcess, tmp_path: Path
) -> None:
    """SSE, chunked and both pollings over TLS and HTTP/2. The WebSocket works too, over
    HTTP/1.1 and TLS: nginx (1.22 here) does not carry WebSockets over HTTP/2 (RFC 8441), and
    the websockets client never asks for it; its upgrade is in nginx's log as HTTP/1.1."""
    path = parse_path("nginx-h2")
    with path.open(Endpoint(server.base_url), tmp_path) as endpoint:
        assert endpoint.base_url.startswith("https://127.0.0.1:")
        assert endpoint.http2
        assert endpoint.ca_file is not None and endpoint.ca_file.is_file()
        phases = await run_benchmark(small_scenario("nginx-h2"), server, endpoint=endpoint)
    assert_complete(phases)
    versions = {p.transport: {r.http_version for r in p.requests} for p in phases}
    for transport in HTTP_TRANSPORTS:
        assert versions[transport] == {"HTTP/2"}, transport
    assert versions["websocket"] == {None}  # the records' convention for a WebSocket
    access = (tmp_path / "path-0-nginx-h2" / nginx.ACCESS_LOG).read_text()
    assert re.search(r'"POST /v1/sse\S* HTTP/2.0" 200', access)
    assert '"GET /v1/ws HTTP/1.1" 101' in access
    assert path.parameters()["nginx-h2"]["client_side"].startswith("HTTP/2")


# --- the streaming headers ------------------------------------------------------------------


def test_the_naive_server_leaves_the_streaming_headers_out(
    slow_server: ServerProcess, naive_server: ServerProcess
) -> None:
    for server, expected in ((slow_server, True), (naive_server, False)):
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as http:
            for url in ("/v1/sse", "/v1/chunked"):
                with http.stream("POST", url, json={"seed": 1, "max_tokens": 2}) as response:
                    sent = {k: response.headers.get(k) for k in STREAMING_HEADERS}
                    response.read()
                assert (sent == STREAMING_HEADERS) is expected, (url, sent)
                assert expected or set(sent.values()) == {None}, (url, sent)
            call = {
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
                "max_tokens": 2,
            }
            with http.stream("POST", "/v1/chat/completions", json=call) as response:
                assert response.status_code == 200
                assert ("x-accel-buffering" in response.headers) is expected
                response.read()


@needs_nginx
async def test_with_the_streaming_headers_nginx_passes_tokens_on_as_they_come(
    slow_server: ServerProcess, tmp_path: Path
) -> None:
    for transport, first, end in await push_timings_through_nginx(slow_server, tmp_path):
        assert end > 1.0, (transport, end)
        assert first < end - 0.8, (transport, first, end)  # long before the end


@needs_nginx
async def test_without_them_nginx_still_passes_a_chunked_upstream_on(
    naive_server: ServerProcess, tmp_path: Path
) -> None:
    """What nginx 1.22 does with a naive server's push response (no `X-Accel-Buffering:
    no`), measured: `proxy_buffering on` does not hold it back. The upstream speaks HTTP/1.1
    and uvicorn answers with `Transfer-Encoding: chunked`; nginx's chunked input filter hands
    every complete chunk to the client as it arrives (`p->length` in ngx_event_pipe.c), so
    the buffers only matter for a body of unknown length that is not chunked (an HTTP/1.0
    upstream answered without chunking). If this ever fails, nginx started buffering the
    naive server: the proxy-buffering scenario will then show it."""
    for transport, first, end in await push_timings_through_nginx(naive_server, tmp_path):
        assert first < end - 0.8, (transport, first, end)


# --- starting and stopping ------------------------------------------------------------------


@needs_nginx
def test_nginx_is_stopped_by_pid_when_the_context_exits(
    server: ServerProcess, tmp_path: Path
) -> None:
    layer = parse_path("nginx").layers[0]
    with layer.open(Endpoint(server.base_url), tmp_path) as endpoint:
        pids = nginx_pids(tmp_path)
        assert len(pids) >= 2  # the master and its worker
        assert httpx.get(endpoint.base_url + "/healthz", trust_env=False).status_code == 200
    assert all(gone(pid) for pid in pids), pids


@needs_nginx
def test_nginx_is_stopped_when_the_run_fails(server: ServerProcess, tmp_path: Path) -> None:
    layer = parse_path("nginx-h2").layers[0]
    pids: list[int] = []
    with (
        pytest.raises(RuntimeError, match="the run failed"),
        layer.open(Endpoint(server.base_url), tmp_path),
    ):
        pids = nginx_pids(tmp_path)
        raise RuntimeError("the run failed")
    assert pids and all(gone(pid) for pid in pids), pids


@needs_nginx
def test_a_failed_start_shows_nginx_error_log(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nginx, "render_config", lambda *args: "no_such_directive on;\n")
    layer = parse_path("nginx").layers[0]
    with (
        pytest.raises(ServerStartError, match=r"exited with status 1.*no_such_directive"),
        layer.open(Endpoint(server.base_url), tmp_path),
    ):
        pass  # pragma: no cover


def test_without_nginx_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nginx, "DEBIAN_NGINX", tmp_path / "no-nginx")
    monkeypatch.setenv("PATH", str(tmp_path))
    layer = parse_path("nginx").layers[0]
    with (
        pytest.raises(ServerStartError, match="apt-get install nginx"),
        layer.open(Endpoint("http://127.0.0.1:1"), tmp_path),
    ):
        pass  # pragma: no cover


# --- the configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["nginx", "nginx-h2"])
def test_the_layers_take_no_argument(kind: str) -> None:
    assert parse_path(kind).layers[0].name == kind
    with pytest.raises(ScenarioError, match="takes no parameters"):
        parse_path(f"{kind}:workers=4")


def test_http2_is_configured_as_the_installed_version_spells_it() -> None:
    assert nginx.listen_directives(8443, True, (1, 22, 1)) == "listen 127.0.0.1:8443 ssl http2;"
    assert "http2 on;" in nginx.listen_directives(8443, True, (1, 25, 1))
    assert nginx.listen_directives(8080, False, (1, 25, 1)) == "listen 127.0.0.1:8080;"


@pytest.mark.parametrize("tls", [False, True])
def test_the_config_writes_inside_its_folder_only(tmp_path: Path, tls: bool) -> None:
    config = nginx.render_config(tmp_path, 8080, Endpoint("http://127.0.0.1:9000"), tls, (1, 22, 1))
    paths = re.findall(r"\s(/\S+?);", config)
    assert paths and all(p.startswith(f"{tmp_path}/") for p in paths if p != "/"), paths
    for directive in ("pid", "error_log", "access_log", "proxy_temp_path", "lock_file"):
        assert re.search(rf"\b{directive} {re.escape(str(tmp_path))}/", config), directive
    assert "server 127.0.0.1:9000;" in config and "keepalive 64;" in config
    assert 'proxy_set_header Connection "";' in config and "proxy_http_version 1.1;" in config
    assert "proxy_set_header Upgrade $http_upgrade;" in config
    assert "proxy_buffering" not in config.replace("# proxy_buffering", "")  # nginx's default
    assert ("ssl_certificate" in config) is tls


def test_the_certificate_is_for_127_0_0_1(tmp_path: Path) -> None:
    from cryptography import x509

    cert_path, key_path = nginx.make_certificate(tmp_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert key_path.stat().st_mode & 0o077 == 0


def test_the_nginx_h2_certificate_also_names_every_emulator_far_end(tmp_path: Path) -> None:
    """So `nginx-h2+net:...` verifies at whichever address the packet emulator gives."""
    from cryptography import x509

    from harness.measure.paths.net.namespace import emulator_addresses

    far_ends = emulator_addresses()
    cert_path, _ = nginx.make_certificate(tmp_path, also=far_ends)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    assert ips == ["127.0.0.1", *far_ends] and len(far_ends) == 64
    assert far_ends[0] == "10.214.0.2" and far_ends[-1] == "10.214.0.254"


# --- the streaming_headers setting, scenario field and sweep axis ---------------------------


def test_streaming_headers_in_scenarios_and_server_args() -> None:
    assert Scenario().streaming_headers is True
    assert Scenario().server_args()[-2:] == ("--streaming-headers", "1")
    naive = scenario_from_dict({"streaming_headers": False})
    assert naive.server_args()[-2:] == ("--streaming-headers", "0")
    for bad in (0, "no"):
        with pytest.raises(ScenarioError, match="streaming_headers must be true or false"):
            scenario_from_dict({"streaming_headers": bad})
    with pytest.raises(ScenarioError, match="requests must be int"):
        scenario_from_dict({"requests": True})


def test_streaming_headers_is_a_server_side_sweep_axis() -> None:
    assert "streaming_headers" in SERVER_AXES and "preset" in SERVER_AXES
    assert parse_sweep("streaming_headers", "true,False").values == (True, False)
    assert parse_sweep("streaming_headers", [False, True]).values == (False, True)
    with pytest.raises(ScenarioError, match="true or false"):
        parse_sweep("streaming_headers", "1,0")
    scenario = with_overrides(Scenario(), sweep="streaming_headers=true,false")
    assert [scenario.at(v).server_args()[-1] for v in scenario.sweep.values] == ["1", "0"]  # type: ignore[union-attr]


@needs_nginx
@pytest.mark.slow
def test_the_proxy_buffering_scenario_restarts_the_server_per_point(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = bench(
        "run",
        "--scenario",
        "scenarios/proxy-buffering.toml",
        "--transports",
        "sse",
        "--requests",
        "2",
        "--warmup",
        "0",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.count("server pid") == 2  # one server per streaming_headers value
    assert done.stdout.count("path nginx: clients use http://127.0.0.1:") == 2
    import json

    results = json.loads((out / "results.json").read_text())
    assert results["sweep"]["axis"] == "streaming_headers"
    assert [p["value"] for p in results["points"]] == [True, False]
    for point in results["points"]:
        requests = point["transports"]["sse"]["phase"]["requests"]
        assert [r["error_kind"] for r in requests] == [None, None]
    assert (out / "sweep_streaming_headers.png").is_file()
