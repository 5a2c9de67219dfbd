"""The `echo` transport's client side: POST the request, read NDJSON lines to the terminal
message (tests/plugins/echo_transport.py is its registry entry, echo_server.py its server
side).

Exchange logic does no I/O: it yields effects (`OpenStream`, `READ_BODY`, `DROP`) and the
driver that runs it (asyncio, blocking, or scripted in tests) performs them and replies,
stamping each reply with the time. The fault plan runs through `resumable`: echo cannot
resume (its entry says so, and a scenario plans no drop for a transport that cannot), but a
scenario may still make its clients leave early."""

from __future__ import annotations

from clients.exchange import READ_BODY, Exchange, HTTPCall, OpenStream, Reply, require_status
from clients.interface import ClientSettings, StreamResult
from clients.resume import Connection, drop_connection, resumable
from errors import StreamIncomplete
from wire.framing import get_framing
from wire.messages import GenerationRequest
from wire.ndjson import LineDecoder

PATH = "/test/echo"


def echo_exchange(
    settings: ClientSettings, request: GenerationRequest, result: StreamResult
) -> Exchange:
    framing = get_framing(settings.framing)
    call = HTTPCall("POST", PATH, params={"framing": framing.name}, json=request.to_json())

    def connect(resuming: bool) -> Connection:  # never resuming: echo has no resume request
        reply: Reply = yield OpenStream(call)
        require_status(reply, call)  # any other status fails the stream (HTTPStatusFailed)
        lines = LineDecoder()
        while (arrival := (yield READ_BODY)) is not None:  # None: the body ended
            payloads = lines.feed(arrival.data)  # the lines this read completed
            if payloads and result.take([framing.decode(p) for p in payloads], arrival.now_ns):
                return None  # the terminal message: the stream is whole
            if (fault := settings.fault_due(result)) is not None:
                return (yield from drop_connection(fault))
        raise StreamIncomplete("the echo stream ended without its terminal message")

    yield from resumable(result, connect)
