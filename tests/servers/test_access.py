"""Who may call the server and from where (servers/access.py): bearer tokens on every
endpoint, streams visible to their creator only, CORS for listed origins, WebSocket origins,
JSON-only bodies, and no network-reachable server without a token. Real uvicorn servers."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TypedDict, Unpack

import httpx
import orjson
import pytest
import websockets
from support import (
    BLOCKING_NAMES,
    FAST_POLLS,
    ROOT,
    TRANSPORT_NAMES,
    async_client,
    blocking_client,
    quic_ca,
    stack_args,
    webtransport_args,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

from clients.interface import ClientSettings
from errors import ErrorKind, ServerSettingsError
from harness.measure.driver import run_benchmark
from harness.measure.scenario import Scenario
from harness.measure.server_process import ServerProcess, start_server, stop_server
from servers.access import BEARER_SUBPROTOCOL_PREFIX, SUBPROTOCOL, Keyring
from servers.app import create_app
from servers.run import exposure_warning
from servers.settings import SERVER_TOKEN_ENV, ServerSettings, Tokens
from servers.sources.mock import MockSource, profile_for
from servers.sources.spec import SourceSpec
from wire.messages import GenerationRequest, dumps, loads

ALICE = "alice-7Qx_2v.k~9+z"
BOB = "bob-Lr3-0pM8aa"
ENV_TOKEN = "from-the-environment-42"
ALLOWED = "http://allowed.example:5173"
FOREIGN = "http://evil.example"
SPEC = SourceSpec(preset="chat", ttft_ms=5, tokens_per_s=2000, tokens_per_response=20)
JSON = {"content-type": "application/json"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ws_url(server: ServerProcess) -> str:
    return server.base_url.replace("http://", "ws://") + "/v1/ws"


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    path.write_text(f"  {ALICE}  \n\n{BOB}\n")
    return path


@pytest.fixture(scope="module")
def guarded(token_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Two principals (alice, bob) and one CORS origin."""
    log = tmp_path_factory.mktemp("guarded") / "server.log"
    args = ("--token-file", str(token_file), "--cors-origin", ALLOWED)
    with pytest.MonkeyPatch.context() as env:
        env.delenv(SERVER_TOKEN_ENV, raising=False)
        process = start_server(SPEC, log, extra_args=(*stack_args(), *webtransport_args(), *args))
    try:
        yield process
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def env_guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The token from TOKENWIRE_SERVER_TOKEN, inherited by the server subprocess."""
    log = tmp_path_factory.mktemp("env-guarded") / "server.log"
    with pytest.MonkeyPatch.context() as env:  # only while it starts: no other server gets it
        env.setenv(SERVER_TOKEN_ENV, ENV_TOKEN)
        process = start_server(SPEC, log, extra_args=(*stack_args(), *webtransport_args()))
    try:
        yield process
    finally:
        stop_server(process)


@pytest.fixture
async def http(guarded: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=guarded.base_url, trust_env=False, timeout=30) as c:
        yield c


def http_endpoints() -> list[tuple[str, str]]:
    """Every HTTP route the app serves (path parameters filled in), read from the app
    itself so that a new endpoint is covered without editing this list."""
    app = create_app(MockSource(profile_for("instant")))
    found = [("GET", "/openapi.json")]
    for path, operations in app.openapi()["paths"].items():
        found += [(m.upper(), path.replace("{stream_id}", "nope")) for m in sorted(operations)]
    assert ("POST", "/v1/chat/completions") in found and ("POST", "/v1/timelines") in found
    return found


# --- tokens on every HTTP endpoint --------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), http_endpoints())
@pytest.mark.parametrize("token", [None, "wrong-token", ALICE + "x", ALICE[:-1]])
async def test_every_http_endpoint_but_healthz_needs_a_valid_token(
    http: httpx.AsyncClient, method: str, path: str, token: str | None
) -> None:
    headers = {**JSON, **(bearer(token) if token else {})}
    body = b"{}" if method == "POST" else None
    response = await http.request(method, path, content=body, headers=headers)
    if path == "/healthz":
        assert response.status_code == 200
        return
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]
    assert token is None or token not in response.text


async def test_a_valid_token_passes_and_any_principal_may_be_used(
    http: httpx.AsyncClient,
) -> None:
    for token in (ALICE, BOB):
        assert (await http.get("/", headers=bearer(token))).status_code == 200
        created = await http.post("/v1/streams", json={}, headers=bearer(token))
        assert created.status_code == 201
    lower_scheme = await http.get("/", headers={"authorization": f"bearer {ALICE}"})
    assert lower_scheme.status_code == 200
    basic = await http.get("/", headers={"authorization": f"Basic {ALICE}"})
    assert basic.status_code == 401


async def test_the_environment_token_guards_a_server(env_guarded: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=env_guarded.base_url, trust_env=False) as http:
        assert (await http.get("/")).status_code == 401
        assert (await http.get("/", headers=bearer(ENV_TOKEN))).status_code == 200
        assert (await http.get("/healthz")).status_code == 200


# --- every transport with a token, end to end ---------------------------------------------


@pytest.mark.parametrize("framing", ["json", "openai"])
@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_every_transport_streams_with_the_token_and_is_refused_without(
    guarded: ServerProcess, transport: str, framing: str
) -> None:
    """The clients send the token on every request and on the WebSocket upgrade (and send
    their bodies as application/json, or the server would answer 415)."""
    for token in (ALICE, None):
        settings = ClientSettings(
            base_url=guarded.base_url,
            framing=framing,
            knobs=FAST_POLLS,
            token=token,
            ca_file=quic_ca(),
        )
        client = async_client(transport, settings)
        stream_id = f"tok-{transport}-{framing}-{'yes' if token else 'no'}"
        request = GenerationRequest(stream_id=stream_id)
        try:
            result = await client.stream(request, time.perf_counter_ns())
        finally:
            await client.aclose()
        if token is None:
            assert result.error is not None and result.error.kind is ErrorKind.HTTP_STATUS
            assert result.texts == []
        else:
            assert result.error is None, result.error
            async with httpx.AsyncClient(base_url=guarded.base_url, trust_env=False) as http:
                path = f"/v1/streams/{stream_id}/timeline?texts=true"
                timeline = (await http.get(path, headers=bearer(ALICE))).json()
            assert result.texts == timeline["texts"] and result.end_ns is not None
        assert ALICE not in repr(settings)


@pytest.mark.parametrize("transport", BLOCKING_NAMES)
def test_the_blocking_clients_of_locust_send_the_token_too(
    guarded: ServerProcess, transport: str
) -> None:
    settings = ClientSettings(base_url=guarded.base_url, knobs=FAST_POLLS, token=BOB)
    client = blocking_client(transport, settings)
    try:
        result = client.stream(GenerationRequest(max_tokens=5), time.perf_counter_ns())
    finally:
        client.close()
    assert result.error is None, result.error
    assert len(result.texts) == 5


async def test_the_driver_measures_a_server_that_needs_the_environment_token(
    env_guarded: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`driver.client_settings` and the out-of-band timeline fetch take the token from
    TOKENWIRE_SERVER_TOKEN, as the server subprocess does."""
    monkeypatch.setenv(SERVER_TOKEN_ENV, ENV_TOKEN)
    scenario = Scenario(requests=3, concurrency=2, warmup=0, source=SPEC)
    scenario = scenario.with_knob("poll_interval_ms", 20)
    phases = await run_benchmark(scenario, env_guarded, ca_file=Path(quic_ca()))
    records = [r for phase in phases for r in phase.requests]
    assert len(records) == 3 * len(TRANSPORT_NAMES)
    assert all(r.error_kind is None for r in records), [r.error_message for r in records]
    assert all(r.source_tokens == len(r.emit_ns) > 0 for r in records)
    assert all(None not in r.emit_ns and r.text_mismatches == 0 for r in records)


# --- the WebSocket: header or subprotocol -------------------------------------------------


class ConnectOptions(TypedDict, total=False):
    """The keywords of websockets' `connect` that these tests vary."""

    additional_headers: dict[str, str]
    subprotocols: list[Subprotocol]
    origin: Origin


async def ws_stream(ws: ClientConnection) -> list[dict[str, object]]:
    await ws.send(dumps({"seed": 1, "max_tokens": 3}))
    return [loads(message) async for message in ws]


async def test_websocket_takes_the_token_in_the_authorization_header(
    guarded: ServerProcess,
) -> None:
    async with connect(ws_url(guarded), additional_headers=bearer(BOB), proxy=None) as ws:
        assert ws.subprotocol is None
        messages = await ws_stream(ws)
    assert [m.get("i") for m in messages] == [0, 1, 2, None]


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([f"{BEARER_SUBPROTOCOL_PREFIX}{ALICE}"], f"{BEARER_SUBPROTOCOL_PREFIX}{ALICE}"),
        ([SUBPROTOCOL, f"{BEARER_SUBPROTOCOL_PREFIX}{ALICE}"], SUBPROTOCOL),
    ],
)
async def test_websocket_takes_the_token_as_a_subprotocol_and_echoes_one(
    guarded: ServerProcess, offered: list[str], chosen: str
) -> None:
    """A browser cannot set headers on a WebSocket: the token travels as a subprotocol, and
    the server accepts one of the offered subprotocols (the client checks it was offered)."""
    subprotocols = [Subprotocol(p) for p in offered]
    async with connect(ws_url(guarded), subprotocols=subprotocols, proxy=None) as ws:
        assert ws.subprotocol == chosen
        messages = await ws_stream(ws)
    assert messages[-1]["done"] is True


@pytest.mark.parametrize(
    "how",
    [
        {},
        {"additional_headers": bearer("wrong-token")},
        {"subprotocols": [Subprotocol(f"{BEARER_SUBPROTOCOL_PREFIX}wrong-token")]},
        {"subprotocols": [Subprotocol(SUBPROTOCOL)]},
    ],
    ids=["none", "wrong-header", "wrong-subprotocol", "no-bearer-subprotocol"],
)
async def test_websocket_without_a_valid_token_is_refused_at_the_upgrade(
    guarded: ServerProcess, how: ConnectOptions
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(ws_url(guarded), proxy=None, **how):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error" in orjson.loads(response.body)


# --- streams belong to their creator ------------------------------------------------------


class Extra(TypedDict, total=False):
    """What a request in `as_each` adds: headers, a JSON body."""

    headers: dict[str, str]
    json: object


async def finished_stream(http: httpx.AsyncClient, stream_id: str) -> None:
    created = await http.post("/v1/streams", json={"stream_id": stream_id}, headers=bearer(ALICE))
    assert created.status_code == 201
    for _ in range(100):
        poll = await http.get(
            f"/v1/streams/{stream_id}", params={"offset": 0, "wait": 5}, headers=bearer(ALICE)
        )
        if poll.json()["done"]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the stream did not finish")


async def test_another_principals_stream_does_not_exist_for_polls_timelines_and_resumes(
    http: httpx.AsyncClient, guarded: ServerProcess
) -> None:
    stream_id = "alice-owns-this"
    await finished_stream(http, stream_id)
    unknown = (await http.get("/v1/streams/nothing-here", headers=bearer(BOB))).json()["error"]

    async def as_each(method: str, path: str, **kwargs: Unpack[Extra]) -> tuple[int, int, str]:
        """(alice's status, bob's status, bob's error)."""
        extra = kwargs.get("headers", {})
        answers = []
        for token in (ALICE, BOB):
            headers = {**bearer(token), **extra}
            answers.append(
                await http.request(method, path, headers=headers, json=kwargs.get("json"))
            )
        bob = answers[1]
        return answers[0].status_code, bob.status_code, bob.json()["error"]

    last_event = {"last-event-id": "2"}
    cases: list[tuple[str, str, Extra]] = [
        ("GET", f"/v1/streams/{stream_id}?offset=0", {}),
        ("GET", f"/v1/streams/{stream_id}?offset=0&wait=1", {}),
        ("GET", f"/v1/streams/{stream_id}/timeline", {}),
        ("GET", f"/v1/sse?stream={stream_id}", {"headers": last_event}),
        ("POST", f"/v1/sse?stream={stream_id}", {"headers": last_event, "json": {}}),
        ("POST", "/v1/sse", {"headers": last_event, "json": {"stream_id": stream_id}}),
        ("POST", f"/v1/chunked?stream={stream_id}&from=1", {}),
    ]
    for method, path, kwargs in cases:
        alice, bob, error = await as_each(method, path, **kwargs)
        assert (alice, bob) == (200, 404), path
        assert error == unknown.replace("nothing-here", stream_id), path

    batch = {"ids": [stream_id], "texts": True, "drop": True}
    bob_batch = await http.post("/v1/timelines", json=batch, headers=bearer(BOB))
    assert bob_batch.json() == {"timelines": [], "missing": [stream_id]}
    alice_batch = await http.post("/v1/timelines", json=batch, headers=bearer(ALICE))
    assert [t["id"] for t in alice_batch.json()["timelines"]] == [stream_id]  # bob dropped none

    resume = dumps({"resume": "alice-ws", "from": 0})
    await finished_stream(http, "alice-ws")
    async with connect(ws_url(guarded), additional_headers=bearer(BOB), proxy=None) as ws:
        await ws.send(resume)
        assert loads(await ws.recv())["error"] == unknown.replace("nothing-here", "alice-ws")
        await ws.wait_closed()  # the server's close, not the one leaving this block sends
    assert ws.close_code == 1008
    async with connect(ws_url(guarded), additional_headers=bearer(ALICE), proxy=None) as ws:
        await ws.send(resume)
        assert [m.get("i") for m in [loads(m) async for m in ws]][-1] is None


# --- CORS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/sse", "/v1/chunked"])
async def test_an_allowed_origin_gets_cors_headers_and_a_foreign_one_none(
    http: httpx.AsyncClient, path: str
) -> None:
    body = {"seed": 1, "max_tokens": 2}
    allowed = await http.post(path, json=body, headers={**bearer(ALICE), "origin": ALLOWED})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    foreign = await http.post(path, json=body, headers={**bearer(ALICE), "origin": FOREIGN})
    assert foreign.status_code == 403  # refused: a cross-site page must not start work
    assert "may not call this server" in foreign.json()["error"]
    assert "access-control-allow-origin" not in foreign.headers

    refused = await http.post(path, json=body, headers={"origin": ALLOWED})
    assert refused.status_code == 401  # a page may read why
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    exposed = refused.headers["access-control-expose-headers"].lower()
    assert "www-authenticate" in exposed and "retry-after" in exposed


@pytest.mark.parametrize("path", ["/v1/sse", "/v1/chunked", "/v1/streams", "/v1/timelines"])
async def test_the_preflight_of_a_json_post_with_a_token(
    http: httpx.AsyncClient, path: str
) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    allowed = await http.options(path, headers={**preflight, "origin": ALLOWED})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in allowed.headers["access-control-allow-methods"]
    allow_headers = allowed.headers["access-control-allow-headers"].lower()
    assert "authorization" in allow_headers and "content-type" in allow_headers
    foreign = await http.options(path, headers={**preflight, "origin": FOREIGN})
    assert "access-control-allow-origin" not in foreign.headers


async def test_no_origin_is_allowed_by_default(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
        answer = await http.post("/v1/sse", json={"max_tokens": 1}, headers={"origin": ALLOWED})
        preflight = await http.options(
            "/v1/sse", headers={"origin": ALLOWED, "access-control-request-method": "POST"}
        )
    assert answer.status_code == 403 and "access-control-allow-origin" not in answer.headers
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers


# --- WebSocket origins --------------------------------------------------------------------


async def test_websocket_from_a_foreign_origin_is_refused(guarded: ServerProcess) -> None:
    for origin, status in (
        (FOREIGN, 403),
        ("null", 403),
        (ALLOWED, None),
        (guarded.base_url, None),
    ):
        options: ConnectOptions = {"origin": Origin(origin), "additional_headers": bearer(ALICE)}
        if status is None:
            async with connect(ws_url(guarded), proxy=None, **options) as ws:
                assert (await ws_stream(ws))[-1]["done"] is True
            continue
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(ws_url(guarded), proxy=None, **options):
                pass
        assert refused.value.response.status_code == status


async def test_websocket_origin_is_checked_without_tokens_too(server: ServerProcess) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(ws_url(server), origin=Origin(FOREIGN), proxy=None):
            pass
    assert refused.value.response.status_code == 403
    async with connect(ws_url(server), origin=Origin(server.base_url), proxy=None) as ws:
        assert (await ws_stream(ws))[-1]["done"] is True
    async with connect(ws_url(server), proxy=None) as ws:  # no Origin: not a browser
        assert (await ws_stream(ws))[-1]["done"] is True


# --- JSON bodies only ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
@pytest.mark.parametrize("path", ["/v1/sse", "/v1/chunked", "/v1/streams", "/v1/chat/completions"])
async def test_a_body_that_is_not_declared_json_is_refused_with_415(
    server: ServerProcess, path: str, content_type: str | None
) -> None:
    """What a cross-site form or a "simple" fetch can send starts nothing."""
    headers = {} if content_type is None else {"content-type": content_type}
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
        answer = await http.post(path, content=b'{"seed":1}', headers=headers)
    assert answer.status_code == 415
    assert "application/json" in str(answer.json()["error"])


async def test_a_body_sent_chunked_is_checked_too(server: ServerProcess) -> None:
    """No Content-Length to look at first: the type is checked once the body is in."""

    async def body() -> AsyncIterator[bytes]:
        yield b'{"seed":'
        yield b"1}"

    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
        plain = await http.post(
            "/v1/streams", content=body(), headers={"content-type": "text/plain"}
        )
        typed = await http.post("/v1/streams", content=body(), headers=JSON)
    assert plain.request.headers["transfer-encoding"] == "chunked"
    assert (plain.status_code, typed.status_code) == (415, 201)


def test_curl_text_plain_gets_415(server: ServerProcess) -> None:
    done = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
         f"{server.base_url}/v1/sse", "-H", "Content-Type: text/plain", "-d", '{"seed":1}'],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if done.returncode == 127 or not done.stdout:
        pytest.skip("curl is not installed")
    assert done.stdout == "415"


async def test_json_with_a_charset_passes_and_an_empty_body_needs_no_type(
    server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
        created = await http.post(
            "/v1/streams",
            content=b'{"stream_id":"typed-resume"}',
            headers={"content-type": "Application/JSON; charset=utf-8"},
        )
        assert created.status_code == 201
        await http.get("/v1/streams/typed-resume", params={"offset": 0, "wait": 5})
        resume = await http.post(
            "/v1/chunked?stream=typed-resume&from=0", headers={"content-type": "text/plain"}
        )
    assert resume.status_code == 200 and resume.text.startswith('{"i":0')


# --- binding ------------------------------------------------------------------------------


def test_a_network_address_without_a_token_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if k != SERVER_TOKEN_ENV}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "servers.run", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "0.0.0.0" in lines[0] and "set one" in lines[0], done.stderr
    assert SERVER_TOKEN_ENV in lines[0] and "--token-file" in lines[0]
    assert time.monotonic() - started < 20


def test_a_network_address_with_a_token_warns_and_loopback_is_quiet() -> None:
    with_token = ServerSettings(tokens=Tokens((ALICE,)))
    for host in ("0.0.0.0", "::", "10.1.2.3", "myhost"):
        warning = exposure_warning(host, with_token)
        assert warning is not None and "reachable from the network" in warning
        with pytest.raises(ServerSettingsError, match="set one"):
            exposure_warning(host, ServerSettings())
    for host in ("127.0.0.1", "::1", "localhost", "127.3.2.1"):
        assert exposure_warning(host, ServerSettings()) is None


# --- settings -----------------------------------------------------------------------------


def parsed(argv: list[str], environ: dict[str, str] | None = None) -> ServerSettings:
    parser = argparse.ArgumentParser()
    ServerSettings.add_arguments(parser)
    with pytest.MonkeyPatch.context() as env:
        env.delenv(SERVER_TOKEN_ENV, raising=False)
        for name, value in (environ or {}).items():
            env.setenv(name, value)
        return ServerSettings.from_args(parser.parse_args(argv))


def test_settings_flags_round_trip_and_never_carry_a_token(token_file: Path) -> None:
    settings = parsed(
        ["--token-file", str(token_file), "--cors-origin", "HTTP://Allowed.Example:5173/",
         "--cors-origin", "https://b.example:443", "--idle-timeout-s", "3"]
    )  # fmt: skip
    assert settings.tokens.values == (ALICE, BOB)
    assert settings.cors_origins == (ALLOWED, "https://b.example")
    args = settings.to_args()
    assert "--token-file" in args and ALICE not in " ".join(args)
    assert parsed(args) == settings
    assert ALICE not in repr(settings) and BOB not in repr(settings)

    from_env = parsed([], {SERVER_TOKEN_ENV: f" {ENV_TOKEN}\n"})
    assert from_env.tokens.values == (ENV_TOKEN,) and from_env.to_args() == []
    assert parsed(from_env.to_args(), {SERVER_TOKEN_ENV: ENV_TOKEN}) == from_env
    file_wins = parsed(["--token-file", str(token_file)], {SERVER_TOKEN_ENV: ENV_TOKEN})
    assert file_wins.tokens.values == (ALICE, BOB)
    assert not parsed([]).tokens and parsed([]).to_args() == []


@pytest.mark.parametrize(
    ("argv", "environ", "needle"),
    [
        (["--token-file", "/no/such/file"], {}, "cannot read --token-file"),
        (["--token-file", "EMPTY"], {}, "holds no token"),
        (["--token-file", "SPACED"], {}, "not usable"),
        ([], {SERVER_TOKEN_ENV: "  "}, "set but empty"),
        ([], {SERVER_TOKEN_ENV: "has/slash="}, "not usable"),
        (["--cors-origin", "*"], {}, "not an origin"),
        (["--cors-origin", "http://a.example/path"], {}, "not an origin"),
        (["--cors-origin", "ftp://a.example"], {}, "not an origin"),
    ],
)
def test_bad_settings_are_user_errors(
    tmp_path: Path, argv: list[str], environ: dict[str, str], needle: str
) -> None:
    (tmp_path / "EMPTY").write_text("\n  \n")
    (tmp_path / "SPACED").write_text("two words\n")
    argv = [str(tmp_path / a) if a in ("EMPTY", "SPACED") else a for a in argv]
    with pytest.raises(ServerSettingsError, match=needle) as raised:
        parsed(argv, environ)
    assert "two words" not in str(raised.value) and "slash" not in str(raised.value)


def test_principals_are_token_digests_compared_whole() -> None:
    keyring = Keyring([ALICE, BOB])
    alice = keyring.principal(ALICE)
    assert alice is not None and len(alice) == 64 and ALICE not in alice
    assert keyring.principal(BOB) not in (None, alice)
    for wrong in ("", ALICE[:-1], ALICE + "x", ALICE.upper()):
        assert keyring.principal(wrong) is None
    assert not Keyring([])


# --- the whole benchmark with a token -----------------------------------------------------


@pytest.mark.slow
def test_a_quick_run_with_the_server_token_has_no_errors(tmp_path: Path) -> None:
    out = tmp_path / "run"
    token = "quick-run-token-8c1f"
    done = subprocess.run(
        [sys.executable, "bench.py", "run", "--scenario", "scenarios/quick.toml",
         "--out", str(out), "--quiet", "--json"],
        cwd=ROOT, env={**os.environ, SERVER_TOKEN_ENV: token},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = orjson.loads((out / "results.json").read_bytes())
    assert list(results["transports"]) == list(TRANSPORT_NAMES)
    for name, entry in results["transports"].items():
        summary = entry["summary"]
        assert summary["errors"] == 0, name
        assert summary["tokens_received"] == summary["tokens_emitted"] > 0, name
    for path in out.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    assert token not in done.stdout + done.stderr
