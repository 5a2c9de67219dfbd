"""The failure lab's server faults: the ASGI layers on hand-made messages (no sockets), then
each fault on a real server as `bench.py probe` diagnoses it, and the heartbeat that fixes
a long silence."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

import bench
from errors import ServerSettingsError
from harness.measure.server_process import ServerProcess, running_server
from servers.faults import FAULTS, FaultyResponses, load_faults
from servers.sources.spec import SourceSpec

EVENTS = [f'data: {{"i":{i}}}\n\n'.encode() for i in range(40)]


def test_fault_names_parse_and_unknown_ones_are_refused() -> None:
    assert load_faults(["nagle+headers_late", "no_terminal,nagle"]) == (
        "nagle",
        "headers_late",
        "no_terminal",
    )
    assert load_faults(["none"]) == load_faults([""]) == load_faults(None) == ()
    with pytest.raises(ServerSettingsError, match=r"unknown server fault.*nagel.*known: nagle"):
        load_faults(["nagel"])


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """A streamed response as Starlette's StreamingResponse sends one."""
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for event in EVENTS:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def sent(faults: tuple[str, ...], accept: bytes = b"gzip, deflate") -> list[Message]:
    """What the middleware hands the server for `_app`'s response."""
    out: list[Message] = []

    async def send(message: Message) -> None:
        out.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "headers": [(b"accept-encoding", accept)]}
    asyncio.run(FaultyResponses(_app, faults)(scope, receive, send))
    return out


def body_of(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def test_no_http_fault_passes_every_message_through() -> None:
    messages = sent(("no_terminal",))
    assert len(messages) == 2 + len(EVENTS)
    assert body_of(messages) == b"".join(EVENTS)


@pytest.mark.parametrize("fault", ["headers_late", "nagle"])
def test_the_head_waits_for_the_first_body_bytes(fault: str) -> None:
    messages = sent((fault,))
    assert [m["type"] for m in messages[:2]] == ["http.response.start", "http.response.body"]
    assert messages[1]["body"] == EVENTS[0]
    assert body_of(messages) == b"".join(EVENTS)


def test_buffer_body_sends_the_whole_body_once_with_its_length() -> None:
    messages = sent(("buffer_body",))
    start, *bodies = messages
    assert len(bodies) == 1 and bodies[0]["body"] == b"".join(EVENTS)
    assert (b"content-length", str(len(b"".join(EVENTS))).encode()) in start["headers"]


def test_gzip_noflush_holds_the_compressed_stream_until_the_end() -> None:
    """zlib keeps small inputs in its buffer: nothing but the gzip header leaves before the
    body ends, and the whole decompresses to the events."""
    messages = sent(("gzip_noflush",))
    start, *bodies = messages
    assert (b"content-encoding", b"gzip") in start["headers"]
    assert len(bodies) <= 2  # the header bytes, and everything at the end
    assert bodies[-1].get("more_body", False) is False
    assert gzip.decompress(body_of(messages)) == b"".join(EVENTS)


def test_gzip_noflush_leaves_a_client_that_does_not_accept_gzip_alone() -> None:
    messages = sent(("gzip_noflush",), accept=b"identity")
    assert all(k != b"content-encoding" for k, _ in messages[0]["headers"])
    assert body_of(messages) == b"".join(EVENTS)


# --- each fault on a real server, as the probe sees it ------------------------------------

SPEC = SourceSpec(preset="chat", ttft_ms=600, tokens_per_s=100, tokens_per_response=30)
DIAGNOSES = {  # fault -> (the probe's problems, its warnings)
    "headers_late": ([], ["headers_late"]),
    "buffer_body": (["buffered"], ["headers_late"]),  # the head waits for the body too
    "gzip_noflush": (["compressed"], []),
    "no_terminal": (["reconnect_loop"], []),
    "no_data_prefix": (["sse_framing"], []),
}


@pytest.fixture(scope="module", params=sorted(DIAGNOSES))
def faulty(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ServerProcess]]:
    fault = str(request.param)
    log = tmp_path_factory.mktemp(f"fault-{fault}") / "server.log"
    with running_server(SPEC, Path(log), extra_args=("--fault", fault)) as server:
        yield fault, server


def probe(capsys: pytest.CaptureFixture[str], url: str, *extra: str) -> dict:
    bench.main(["probe", url, "--json", "--repeat", "2", "--timeout", "20", *extra])
    report: dict = orjson.loads(capsys.readouterr().out)
    return report


def test_probe_names_each_server_fault(
    capsys: pytest.CaptureFixture[str], faulty: tuple[str, ServerProcess]
) -> None:
    fault, server = faulty
    report = probe(capsys, server.base_url + "/v1/sse?seed=3", "--header", "Accept-Encoding: gzip")
    problems, warnings = DIAGNOSES[fault]
    assert [p["code"] for p in report["problems"]] == problems, report
    assert [w["code"] for w in report["warnings"]] == warnings, report
    if fault == "headers_late":  # the head waits for the first token, ~600 ms
        assert report["ttfh_ms"] >= 300 and report["ttfh_ms"] == pytest.approx(
            report["ttfb_ms"], abs=50
        )


def test_every_fault_has_a_diagnosis_here_or_in_the_nagle_test() -> None:
    assert set(DIAGNOSES) | {"nagle"} == set(FAULTS)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """A quick first token (the head and token 0 within a few ms): with and without `nagle`,
    and gzipped without a flush; a silent 1.5 s wait with a heartbeat."""
    quick = SourceSpec(preset="chat", ttft_ms=5, tokens_per_s=100, tokens_per_response=20)
    slow = SourceSpec(preset="chat", ttft_ms=1500, tokens_per_s=100, tokens_per_response=12)
    logs = tmp_path_factory.mktemp("lab")
    with (
        running_server(quick, logs / "nagle.log", extra_args=("--fault", "nagle")) as nagle,
        running_server(quick, logs / "plain.log") as plain,
        running_server(slow, logs / "beat.log", extra_args=("--heartbeat-s", "0.2")) as beat,
        running_server(quick, logs / "gzip.log", extra_args=("--fault", "gzip_noflush")) as gz,
    ):
        yield {"nagle": nagle, "plain": plain, "beat": beat, "gzip": gz}


def test_probe_names_nagle_on_the_reused_connection_only(
    capsys: pytest.CaptureFixture[str], servers: dict[str, ServerProcess]
) -> None:
    """Linux delays the ACK of the head on a reused connection; Nagle holds token 0 until
    it comes (a new connection acknowledges at once, and TCP_NODELAY never waits)."""
    url = "/v1/sse?seed=2"
    nagle = probe(capsys, servers["nagle"].base_url + url, "--repeat", "4")
    assert "nagle" in [w["code"] for w in nagle["warnings"]], nagle
    assert [r["reused"] for r in nagle["per_run"]] == [False, True, True, True]
    fresh = probe(capsys, servers["nagle"].base_url + url, "--repeat", "4", "--fresh-connections")
    assert "nagle" not in [w["code"] for w in fresh["warnings"]], fresh
    assert not any(r["reused"] for r in fresh["per_run"])
    plain = probe(capsys, servers["plain"].base_url + url, "--repeat", "4")
    assert "nagle" not in [w["code"] for w in plain["warnings"]], plain


@pytest.mark.parametrize("path", ["/v1/sse?seed=4", "/v1/chunked"])
def test_a_heartbeat_fills_the_wait_before_the_first_token(
    capsys: pytest.CaptureFixture[str], servers: dict[str, ServerProcess], path: str
) -> None:
    """Keep-alive bytes every 0.2 s while the source thinks for 1.5 s: the longest silence
    stays near 0.2 s, and the stream still reads whole (the probe, and our own client)."""
    data = ("--data", '{"seed": 4}') if path == "/v1/chunked" else ()
    report = probe(capsys, servers["beat"].base_url + path, *data)
    assert report["verdict"] == "streams" and report["terminal"], report
    assert report["ttft_ms"] >= 1000  # the first *event* still waits for the source
    assert report["silence_ms"] < 600, report


def test_our_clients_read_through_heartbeats(servers: dict[str, ServerProcess]) -> None:
    import httpx

    from wire.ndjson import LineDecoder

    body = httpx.post(servers["beat"].base_url + "/v1/chunked", json={"seed": 5}).content
    assert b"\n\n" in body  # blank keep-alive lines came
    lines = LineDecoder().feed(body)
    assert lines and all(lines)
    assert orjson.loads(lines[-1]).get("done") is True


@pytest.mark.parametrize("transport", ["sse", "chunked"])
def test_our_clients_decode_a_gzipped_stream_and_see_it_arrive_in_one_lump(
    servers: dict[str, ServerProcess], transport: str
) -> None:
    """The clients accept gzip (as httpx does) and undo it read by read: every token, each
    one arriving at the end, when the compressor let go."""
    from clients.asyncio_io import AsyncStreamClient
    from clients.interface import ClientSettings, StreamResult
    from harness.measure import event_loop
    from harness.measure.run.timelines import fetch_timelines
    from transports import TRANSPORTS
    from wire.messages import GenerationRequest

    base = servers["gzip"].base_url
    settings = ClientSettings(base)

    async def run() -> StreamResult:
        client = AsyncStreamClient(transport, TRANSPORTS.get(transport).exchange, settings)
        try:
            request = GenerationRequest(seed=6, stream_id=f"gzip-{transport}")
            return await client.stream(request, 0)
        finally:
            await client.aclose()

    result = event_loop.run(run())
    assert result.error is None and result.end_ns is not None
    timeline = event_loop.run(fetch_timelines(base, [f"gzip-{transport}"]))[f"gzip-{transport}"]
    assert result.texts == timeline.texts and len(result.texts) >= 10
    assert len(set(result.recv_ns)) == 1  # one read brought them all
