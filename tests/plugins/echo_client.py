"""The `echo` transport's client side: POST the request, read NDJSON lines to the end
(tests/plugins/echo_transport.py)."""

from __future__ import annotations

from clients.exchange import READ_BODY, Exchange, HTTPCall, OpenStream, Reply, require_status
from clients.interface import ClientSettings, StreamResult
from errors import StreamIncomplete
from wire.framing import get_framing
from wire.messages import GenerationRequest
from wire.ndjson import LineDecoder


def echo_exchange(
    settings: ClientSettings, request: GenerationRequest, result: StreamResult
) -> Exchange:
    call = HTTPCall("POST", "/test/echo", json=request.to_json())
    reply: Reply = yield OpenStream(call)
    require_status(reply, call)
    lines, framing = LineDecoder(), get_framing(settings.framing)
    while (arrival := (yield READ_BODY)) is not None:
        payloads = lines.feed(arrival.data)
        if payloads and result.take([framing.decode(p) for p in payloads], arrival.now_ns):
            return
    raise StreamIncomplete("the echo stream ended without its terminal line")
