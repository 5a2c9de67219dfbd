"""HTTP/3: the asyncio driver's QUIC transport (clients.h3_io) against a real hypercorn
server answering QUIC with a throwaway certificate: every HTTP transport's streams arrive
whole over one connection, with their version, bytes, handshake and losses recorded;
drops resume, leaves end the stream; a server without QUIC, an untrusted certificate and
the blocking driver are one-line errors. The loss bookkeeping is tested without sockets."""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import async_client, blocking_client

from clients import h3_io
from clients.interface import ClientSettings, StreamResult
from errors import ConnectFailed, UsageError
from harness.measure.paths.certificate import clients_certificate
from harness.measure.server_process import ServerProcess, running_server
from servers.sources.spec import SourceSpec
from servers.stacks.options import add_stack_arguments, chosen_stack, http3_files
from stacks import STACKS
from wire.messages import GenerationRequest

pytestmark = pytest.mark.timeout(120)

HTTP3_STACK = next(s.name for s in STACKS if "3" in s.http_versions)
HTTP_TRANSPORTS = ("sse", "chunked", "long_poll", "short_poll")
TOKENS = 12


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return clients_certificate(tmp_path_factory.mktemp("http3-cert"))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[ServerProcess]:
    cert, key = certificate
    log = tmp_path_factory.mktemp("http3") / "server.log"
    args = ("--stack", HTTP3_STACK, "--http3-cert", str(cert), "--http3-key", str(key))
    with running_server(
        SourceSpec(preset="chat"), log, extra_args=(*args, "--resume-grace-s", "0.5")
    ) as process:
        yield process


def settings(server: ServerProcess, cert: Path, drop: int = 0, leave: int = 0) -> ClientSettings:
    return ClientSettings(
        server.base_url,
        http3=True,
        ca_file=str(cert),
        max_connections=4,
        drop_at_token=drop,
        leave_at_token=leave,
    )


async def streams(
    transport: str, given: ClientSettings, count: int, tag: str = "all"
) -> list[StreamResult]:
    client = async_client(transport, given)
    try:
        return list(
            await asyncio.gather(
                *(
                    client.stream(
                        GenerationRequest(
                            seed=k, max_tokens=TOKENS, stream_id=f"h3-{tag}-{transport}-{k}"
                        ),
                        time.perf_counter_ns(),
                    )
                    for k in range(count)
                )
            )
        )
    finally:
        await client.aclose()


@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
def test_every_http_transport_streams_over_one_quic_connection(
    server: ServerProcess, certificate: tuple[Path, Path], transport: str
) -> None:
    results = asyncio.run(streams(transport, settings(server, certificate[0]), 3))
    for result in results:
        assert result.error is None, result.error
        assert result.indices == list(range(TOKENS))
        assert result.http_version == "HTTP/3"
        # recorded; not necessarily 0: on a busy machine a late timer can declare a packet
        # lost that was not (a probe timeout). The counts are checked under real loss in
        # tests/harness/measure/test_http3_path.py
        assert result.packets_lost is not None and result.packets_lost >= 0
    # one connection for the client's three concurrent streams, begun with TLS
    assert sum(r.connections for r in results) == 1
    assert sum(r.tls_handshakes for r in results) == 1
    assert sum(r.requests for r in results) >= 3
    received = sum(r.bytes_received for r in results)
    sent = sum(r.bytes_sent for r in results)
    assert received > TOKENS * 3 * 10 and sent > 0  # tokens, with QUIC's framing


def test_the_connections_bytes_are_charged_whole(
    server: ServerProcess, certificate: tuple[Path, Path]
) -> None:
    """What the streams were charged is what the QUIC connection sent and received up to
    their ends: the counters' growth, charged once."""

    async def run() -> tuple[list[StreamResult], h3_io.QuicCounters]:
        client = async_client("sse", settings(server, certificate[0]))
        try:
            results = [
                await client.stream(
                    GenerationRequest(seed=k, max_tokens=TOKENS, stream_id=f"h3-bytes-{k}"),
                    time.perf_counter_ns(),
                )
                for k in range(3)
            ]
            transport = client.http._transport
            assert isinstance(transport, h3_io.H3Transport) and transport.protocol is not None
            counters = transport.protocol.counters
            return results, h3_io.QuicCounters(counters.sent, counters.received)
        finally:
            await client.aclose()

    results, counters = asyncio.run(run())
    # the last stream's charge is taken at its end; a late ACK may follow it
    assert sum(r.bytes_received for r in results) <= counters.received
    assert sum(r.bytes_received for r in results) >= counters.received - 200
    assert sum(r.bytes_sent for r in results) <= counters.sent


@pytest.mark.parametrize("transport", ("sse", "chunked", "long_poll"))
def test_a_drop_resumes_and_a_leave_ends_the_stream(
    server: ServerProcess, certificate: tuple[Path, Path], transport: str
) -> None:
    cert = certificate[0]
    dropped = asyncio.run(streams(transport, settings(server, cert, drop=4), 1, "drop"))[0]
    assert dropped.error is None and dropped.indices == list(range(TOKENS))
    assert len(dropped.drops_ns) == 1 and dropped.requests >= 2
    left = asyncio.run(streams(transport, settings(server, cert, leave=4), 1, "leave"))[0]
    assert left.error is None and left.left_ns is not None
    assert len(left.indices) == 4


def test_a_server_without_quic_is_a_connect_error(
    monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]
) -> None:
    monkeypatch.setattr(h3_io, "CONNECT_TIMEOUT_S", 1.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:  # bound, never answers
        quiet.bind(("127.0.0.1", 0))
        port = quiet.getsockname()[1]
        given = ClientSettings(f"http://127.0.0.1:{port}", http3=True, ca_file=str(certificate[0]))
        result = asyncio.run(streams("sse", given, 1))[0]
    assert result.error is not None and result.error.kind == ConnectFailed.kind
    assert "QUIC handshake" in result.error.message and "HTTP/3" in result.error.message


def test_a_certificate_not_trusted_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    other, _ = clients_certificate(tmp_path)  # a certificate of its own: not the server's
    result = asyncio.run(streams("sse", settings(server, other), 1, "untrusted"))[0]
    assert result.error is not None and result.error.kind == ConnectFailed.kind


def test_the_blocking_driver_refuses_http3_in_one_line(
    server: ServerProcess, certificate: tuple[Path, Path]
) -> None:
    client = blocking_client("sse", settings(server, certificate[0]))
    with pytest.raises(UsageError, match="asyncio driver only"):
        client.http  # noqa: B018 - the pool is made on first use


# --- without sockets ---------------------------------------------------------------------


def received(trace: h3_io.LossTrace, number: int, kind: str = h3_io.ONE_RTT) -> None:
    trace.log_event(
        category="transport",
        event="packet_received",
        data={"header": {"packet_number": number, "packet_type": kind}},
    )


def test_losses_are_the_gaps_in_what_arrived_and_what_was_declared_lost() -> None:
    trace = h3_io.LossTrace(is_client=True, odcid=b"\x00" * 8)
    assert trace.lost == 0
    received(trace, 0, "initial")  # the handshake's packets take numbers of the same counter
    received(trace, 2, "handshake")
    for number in (5, 6, 7, 10, 11, 14):
        received(trace, number)
    assert trace.lost == 4  # 8, 9, 12, 13 never came; nothing before 5, the first 1-RTT
    received(trace, 9)  # late, not lost
    received(trace, 9)  # a duplicate counts once
    assert trace.lost == 3
    trace.log_event(category="recovery", event="packet_lost", data={"type": "1RTT"})
    trace.log_event(category="recovery", event="packet_lost", data={"type": "handshake"})
    assert trace.lost == 4 and trace.sent_lost == 1 and trace.missing == 3


def test_counters_charge_their_growth_once() -> None:
    counters = h3_io.QuicCounters(sent=100, received=1000)
    assert counters.charge() == (100, 1000)
    assert counters.charge() == (0, 0)
    counters.sent += 7
    counters.received += 70
    assert counters.charge() == (7, 70)


def test_request_headers_put_pseudo_headers_first_and_drop_connection_ones() -> None:
    request = httpx.Request(
        "GET",
        "http://127.0.0.1:8000/v1/sse?x=1",
        headers={"Connection": "keep-alive", "Accept": "text/event-stream"},
    )
    headers = h3_io.request_headers(request)
    names = [name for name, _ in headers]
    assert names[:4] == [b":method", b":scheme", b":authority", b":path"]
    assert (b":path", b"/v1/sse?x=1") in headers and (b":scheme", b"https") in headers
    assert b"connection" not in names and b"host" not in names
    assert (b"accept", b"text/event-stream") in headers


def test_the_server_answers_http3_only_on_a_stack_that_speaks_it() -> None:
    parser = argparse.ArgumentParser()
    add_stack_arguments(parser)
    plain = next(s.name for s in STACKS if "3" not in s.http_versions)
    args = parser.parse_args(["--stack", plain, "--http3-cert", "c.pem", "--http3-key", "k.pem"])
    with pytest.raises(UsageError, match=f"stack {plain} does not speak HTTP/3; {HTTP3_STACK}"):
        chosen_stack(args)
    args = parser.parse_args(["--stack", HTTP3_STACK, "--http3-cert", "c.pem"])
    with pytest.raises(UsageError, match="--http3-cert and --http3-key go together"):
        chosen_stack(args)
    args = parser.parse_args(["--stack", HTTP3_STACK, "--http3-cert", "c", "--http3-key", "k"])
    assert chosen_stack(args).name == HTTP3_STACK and http3_files(args) == ("c", "k")


def test_a_request_cancelled_before_its_head_resets_its_stream(
    server: ServerProcess, certificate: tuple[Path, Path]
) -> None:
    """A long poll waits for the first token (the chat preset's TTFT is hundreds of ms);
    cancelled before its head, its QUIC stream is reset and forgotten, not left queueing."""

    async def run() -> dict[int, object]:
        transport = h3_io.H3Transport(settings(server, certificate[0]))
        async with httpx.AsyncClient(transport=transport, base_url=server.base_url) as http:
            request = GenerationRequest(seed=3, max_tokens=TOKENS, stream_id="h3-cancelled")
            created = await http.post("/v1/streams", json=request.to_json())
            assert created.status_code == 201
            poll = http.get("/v1/streams/h3-cancelled", params={"offset": 0, "wait": 5})
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(poll, 0.05)
            assert transport.protocol is not None
            return dict(transport.protocol.queues)

    assert asyncio.run(run()) == {}


def test_a_taken_udp_port_is_a_one_line_error(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = str(taken.getsockname()[1])
        args = ("--port", port, "--stack", HTTP3_STACK, "--http3-cert", str(cert))
        done = subprocess.run(
            [sys.executable, "-m", "servers.run", *args, "--http3-key", str(key)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).parents[2],
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"servers.run: error: HTTP/3 answers on UDP port {port} of 127.0.0.1, the TCP port's "
        "number, and that port is taken (Address already in use): serve on another port"
    ]
