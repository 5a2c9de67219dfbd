"""The raw client, the floor the harness's client is compared with, counts exactly the
tokens the server emitted (a count that must match), whichever way reads split them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from support import serve

from harness.measure import event_loop
from harness.measure.raw_client import (
    TOKEN_MARK,
    Counting,
    WebSocketCounting,
    masked_text_frame,
    run_raw,
)
from harness.measure.run.timelines import fetch_timelines
from harness.measure.server_process import ServerProcess
from servers.sources.spec import SourceSpec
from transports import TRANSPORTS
from wire.messages import GenerationRequest

SPEC = SourceSpec(preset="chat", ttft_ms=5, tokens_per_s=500, tokens_per_response=25)


@pytest.fixture(scope="module")
def raw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve(tmp_path_factory, "raw", SPEC)


@pytest.mark.parametrize("transport", TRANSPORTS.raw_readable())
def test_the_raw_client_counts_every_emitted_token(
    raw_server: ServerProcess, transport: str
) -> None:
    tag = f"raw-{transport}-{time.time_ns()}"
    requests = [GenerationRequest(seed=k, stream_id=f"{tag}-{k}") for k in range(12)]
    run = event_loop.run(run_raw(transport, raw_server.base_url, requests, concurrency=4))
    ids = [r.stream_id for r in requests if r.stream_id is not None]
    timelines = event_loop.run(fetch_timelines(raw_server.base_url, ids))
    assert run.streams == 12
    assert run.tokens == sum(t.tokens for t in timelines.values()) > 0
    assert run.cpu_s > 0 and run.cpu_us_per_token is not None


def body() -> bytes:
    lines = [b'{"i":%d,"t":"x"}\n' % k for k in range(5)] + [b'{"done":true,"n":5}\n']
    return b"".join(b"%x\r\n%s\r\n" % (len(line), line) for line in lines) + b"0\r\n\r\n"


def test_marks_and_the_end_are_found_at_every_split() -> None:
    data = body()
    for cut in range(len(data) + 1):
        counting = Counting(b"0\r\n\r\n")
        ended: list[bool] = []
        counting._end = lambda ended=ended: ended.append(True)  # type: ignore[method-assign,misc]
        for piece in (data[:cut], data[cut:]):
            if piece:
                counting.data_received(piece)
        assert counting.tokens == 5 and ended == [True], cut


def test_websocket_frames_are_counted_fed_byte_by_byte() -> None:
    def frame(payload: bytes, opcode: int = 1) -> bytes:
        n = len(payload)
        size = bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2)
        return bytes([0x80 | opcode]) + size + payload

    upgrade = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"
    tokens = [frame(TOKEN_MARK + b'%d,"t":"%s"}' % (k, b"y" * 130 * k)) for k in range(4)]
    data = upgrade + b"".join(tokens) + frame(b'{"done":true}') + frame(b"\x03\xe8", 8)
    counting = WebSocketCounting()
    ends = []
    counting._end = lambda: ends.append(True)  # type: ignore[method-assign]
    for k in range(len(data)):
        counting.data_received(data[k : k + 1])
    assert counting.tokens == 4 and ends == [True, True]  # the upgrade, then the close
    assert counting.messages == 5  # the four tokens and the terminal message


def test_a_client_frame_is_masked_with_a_zero_key() -> None:
    assert masked_text_frame("hi") == b"\x81\x82\0\0\0\0hi"
    long = masked_text_frame("x" * 200)
    assert long[:4] == b"\x81\xfe\x00\xc8" and long[8:] == b"x" * 200
