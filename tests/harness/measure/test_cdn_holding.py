"""The `cdn-buffer` layer's hold (pure): responses held until `hold_bytes` of body or their
end, unless they say X-Accel-Buffering: no or Cache-Control: no-transform; every byte
passed on unchanged and in order, whole, byte by byte and at every split."""

from __future__ import annotations

import pytest
from support import splits

from harness.measure.paths.net.holding import HoldStats, ResponseHold, exempt

REQUEST = b"POST /v1/sse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
EVENTS = [b'data: {"i":%d}\n\n' % i for i in range(6)]


def response(*extra: bytes) -> tuple[bytes, list[bytes]]:
    """A chunked SSE response: its head, then one chunk per event, then the end."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
    head += b"".join(h + b"\r\n" for h in extra) + b"\r\n"
    chunks = [b"%x\r\n%s\r\n" % (len(e), e) for e in EVENTS] + [b"0\r\n\r\n"]
    return head, chunks


def through(hold: ResponseHold, pieces: list[bytes]) -> list[bytes]:
    return [hold.from_origin(p) for p in pieces]


def test_a_held_response_comes_out_whole_at_its_end() -> None:
    head, chunks = response()
    hold = ResponseHold(hold_bytes=1 << 16)
    hold.from_client(REQUEST)
    out = through(hold, [head, *chunks])
    assert out[:-1] == [b""] * len(chunks)  # nothing before the end
    assert out[-1] == head + b"".join(chunks)
    assert (hold.stats.held, hold.stats.releases) == (1, 1)


def test_a_held_response_comes_out_in_lumps_of_hold_bytes() -> None:
    head, chunks = response()
    hold = ResponseHold(hold_bytes=2 * len(EVENTS[0]))
    hold.from_client(REQUEST)
    out = through(hold, [head, *chunks])
    lumps = [o for o in out if o]
    assert b"".join(lumps) == head + b"".join(chunks)
    assert len(lumps) == 4  # 2 events, 2 events, 2 events, the end


@pytest.mark.parametrize(
    "header", [b"X-Accel-Buffering: no", b"Cache-Control: no-cache, no-transform"]
)
def test_an_exempt_response_passes_as_it_comes(header: bytes) -> None:
    head, chunks = response(header)
    hold = ResponseHold(hold_bytes=1 << 16)
    hold.from_client(REQUEST)
    assert through(hold, [head, *chunks]) == [head, *chunks]
    assert hold.stats.held == 0


def test_exempt_reads_the_headers_as_documented() -> None:
    assert exempt([(b"x-accel-buffering", b"no")])
    assert exempt([(b"cache-control", b"no-cache, no-transform")])
    assert not exempt([(b"cache-control", b"no-cache")])
    assert not exempt([(b"x-accel-buffering", b"yes")])


def test_every_split_passes_every_byte_in_order() -> None:
    head, chunks = response()
    whole = head + b"".join(chunks)
    for pieces in splits(whole, 7):
        hold = ResponseHold(hold_bytes=40)
        for piece in splits(REQUEST, 7).__next__():
            hold.from_client(piece)
        assert b"".join(through(hold, pieces)) == whole


def test_keep_alive_cycles_are_each_judged_on_their_own() -> None:
    """A held response, then on the same connection an exempt one: the second streams."""
    stats = HoldStats()
    hold = ResponseHold(hold_bytes=1 << 16, stats=stats)
    head, chunks = response()
    hold.from_client(REQUEST)
    assert through(hold, [head, *chunks])[-1] == head + b"".join(chunks)
    head2, chunks2 = response(b"X-Accel-Buffering: no")
    hold.from_client(REQUEST)
    assert through(hold, [head2, *chunks2]) == [head2, *chunks2]
    assert (stats.responses, stats.held) == (2, 1)


def test_a_websocket_upgrade_passes_straight_through() -> None:
    hold = ResponseHold(hold_bytes=1 << 16)
    hold.from_client(
        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    switch = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    frame = b"\x81\x05hello"
    assert through(hold, [switch + frame, frame]) == [switch + frame, frame]


def test_the_end_of_the_connection_lets_everything_held_go() -> None:
    head, chunks = response()
    hold = ResponseHold(hold_bytes=1 << 16)
    hold.from_client(REQUEST)
    assert through(hold, [head, chunks[0]]) == [b"", b""]
    assert hold.from_origin(b"") == head + chunks[0]


def test_what_it_cannot_parse_passes_unchanged() -> None:
    hold = ResponseHold(hold_bytes=1 << 16)
    hold.from_client(b"NOT HTTP AT ALL\r\n\r\n")
    assert hold.from_origin(b"whatever") == b"whatever"
