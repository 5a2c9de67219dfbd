"""Webhook client logic: listen, subscribe, then take the server's signed POSTs. No I/O here.

1. `ListenForCallbacks`: the driver opens this stream's mailbox on its client's callback
   receiver (a small HTTP server on loopback, started on first use) and replies with the
   callback URL.
2. `POST /v1/webhooks` with the generation request, `callback_url` and `batch_ms`
   (the transport's setting `batch_ms`); the server answers 202 with the stream id.
3. Each callback (`ReceiveCallback`): the signature is checked against the shared secret
   (`ClientSettings.webhook_secret`) and the receiver's clock; a bad or stale one is answered
   401 and changes nothing. A good one is decoded (`wire.webhook`), its tokens numbered from
   the delivery head's `from`, the ones already received dropped (a retried delivery
   repeats them), the rest recorded with the stamp of the read that completed the body,
   and answered 200 (`AnswerCallback`). The terminal delivery ends the stream.

Faults (the fault benchmark): a drop refuses the next delivery with 503, as a receiver that
is briefly down would; the server retries it, so nothing is lost. A leave stops listening:
the server's next POST gets 410 Gone and it cancels the generation.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from clients.exchange import (
    LISTEN,
    AnswerCallback,
    Callback,
    Effect,
    Exchange,
    Fetch,
    HTTPCall,
    ReceiveCallback,
    Reply,
    require_status,
)
from clients.interface import ClientSettings, Fault, StreamResult
from clients.resume import Connection, Interruption, resumable
from errors import ProtocolViolation, StreamIncomplete, StreamTimedOut
from wire.carriages import DELIVERIES
from wire.framing import Framing, get_framing
from wire.messages import GenerationRequest, Message, TokenMsg, dumps, loads
from wire.webhook import (
    PATH,
    SIGNATURE_HEADER,
    SignatureRejected,
    Subscription,
    decode_delivery,
    decode_subscribed,
    verify,
)

MAX_CALLBACKS = 1 << 62  # a bound for the loop, never reached: the stream timeout ends it first
OK = b""


def subscribe_call(
    settings: ClientSettings, framing: Framing, request: GenerationRequest, url: str
) -> HTTPCall:
    body = Subscription(request, url, settings.knob("batch_ms")).to_json()
    return HTTPCall("POST", PATH, params={"framing": framing.name}, json=body, expected_status=202)


def refusal(message: str) -> bytes:
    return dumps({"error": message}).encode()


@dataclass
class Inbox:
    """One stream's deliveries: checked, numbered, deduplicated by token index."""

    stream_id: str
    framing: Framing
    seen: set[int] = field(default_factory=set)

    def take(self, body: bytes) -> list[Message]:
        """The new messages of one delivery body (tokens already received left out)."""
        head, payloads = decode_delivery(body)
        if head.stream != self.stream_id:
            raise ProtocolViolation(
                f"a delivery for stream {head.stream!r} reached stream {self.stream_id!r}"
            )
        index = head.start
        fresh: list[Message] = []
        for payload in payloads:
            message = self.framing.decode(payload)
            if isinstance(message, TokenMsg):
                if message.i is not None and message.i != index:
                    raise ProtocolViolation(f"token {message.i} where index {index} was due")
                if index not in self.seen:
                    self.seen.add(index)
                    fresh.append(TokenMsg(index, message.text))
                index += 1
            else:
                fresh.append(message)
        return fresh


def check_signature(settings: ClientSettings, callback: Callback) -> str | None:
    """Why the callback is refused (its signature is missing, wrong or stale), or None."""
    if settings.webhook_secret is None:
        raise ProtocolViolation(
            "a callback came, but there is no webhook secret to verify it with: set "
            "TOKENWIRE_WEBHOOK_SECRET to the server's"
        )
    header = callback.headers.get(SIGNATURE_HEADER.lower())
    try:
        verify(settings.webhook_secret, header, callback.body, callback.wall_s)
    except SignatureRejected as exc:
        return str(exc)
    return None


def next_signed(settings: ClientSettings) -> Generator[Effect, Any, Callback]:
    """The next callback whose signature holds; the others are answered 401 and change
    nothing. `StreamTimedOut` when none comes within the stream's timeout."""
    while True:
        callback: Callback | None = yield ReceiveCallback(settings.stream_timeout_s)
        if callback is None:
            raise StreamTimedOut(f"no callback came within {settings.stream_timeout_s:g} s")
        rejected = check_signature(settings, callback)
        if rejected is None:
            return callback
        yield AnswerCallback(401, refusal(rejected))


def exchange(
    settings: ClientSettings, request: GenerationRequest, result: StreamResult
) -> Exchange:
    framing = get_framing(settings.framing).over(DELIVERIES)
    url: str = yield LISTEN
    call = subscribe_call(settings, framing, request, url)
    reply: Reply = yield Fetch(call)
    require_status(reply, call)
    result.stream_id = decode_subscribed(loads(reply.body))
    inbox = Inbox(result.stream_id, framing)

    def connect(resuming: bool) -> Connection:
        """Take deliveries until the terminal one or a fault. A leave is stamped with the
        last delivery taken; a drop refuses the next delivery (503: the receiver is briefly
        down, the server retries it), stamped with that delivery."""
        for _ in range(MAX_CALLBACKS):
            callback = yield from next_signed(settings)
            messages = inbox.take(callback.body)
            ended = result.take(messages, callback.now_ns) if messages else False
            yield AnswerCallback(200, OK)
            if ended:
                return None
            fault = settings.fault_due(result)
            if fault is Fault.LEAVE:
                return Interruption(fault, callback.now_ns)
            if fault is Fault.DROP:
                refused = yield from next_signed(settings)
                yield AnswerCallback(503, refusal("the receiver is down (a planned fault)"))
                return Interruption(fault, refused.now_ns)
        raise StreamIncomplete("the callbacks never reached the terminal delivery")

    yield from resumable(result, connect)
