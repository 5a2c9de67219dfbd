"""Webhooks as pure functions: the subscription request, the delivery body and its
signature. No I/O, no clock reads (callers pass the time in).

A client subscribes with `POST /v1/webhooks`: the generation request plus `callback_url`
and, optionally, `batch_ms`. The server then POSTs deliveries to the callback URL, each
body NDJSON (`application/x-ndjson`): a head line, then framed messages exactly as the
push transports send them (the framing's start messages in the first delivery, tokens,
and the framing's end messages in the last, the terminal delivery):

    {"stream":"r1-webhook-0","seq":3,"from":7}
    {"i":7,"t":" hello"}
    {"i":8,"t":" world"}

`from` is the index of the delivery's first token (in the terminal delivery: the number of
tokens), so the receiver can number tokens of a framing that carries no index (`openai`)
and drop the ones it already has when a delivery is retried. The head is part of the body,
so the signature covers it.

Every delivery is signed in the style of Stripe's and GitHub's webhooks:

    X-Tokenwire-Signature: t=1717171717,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

`t` is the sender's Unix time in seconds at this attempt (every retry is signed afresh). A
receiver recomputes the HMAC with the shared secret, compares in constant time, and refuses
a timestamp further than `TOLERANCE_S` from its own clock (a replayed old delivery).
Several `v1=` entries may be given (a secret being rotated); one match is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from errors import ProtocolError
from wire.messages import REQUEST_FIELDS, STREAM_ID, GenerationRequest, dumps, loads
from wire.ndjson import MEDIA_TYPE, encode_line

PATH = "/v1/webhooks"
SECRET_ENV = "TOKENWIRE_WEBHOOK_SECRET"  # the shared secret, when no file names it
SIGNATURE_HEADER = "X-Tokenwire-Signature"
DELIVERY_HEADER = "X-Tokenwire-Delivery"  # "<stream id>:<seq>", the same on every retry
ATTEMPT_HEADER = "X-Tokenwire-Attempt"  # 1 for the first try, 2 for the first retry, ...
CONTENT_TYPE = MEDIA_TYPE
SCHEME = "v1"
TOLERANCE_S = 300  # how far a delivery's timestamp may be from the receiver's clock
MAX_BATCH_MS = 60_000.0
MIN_SECRET_CHARS = 16
MAX_URL_CHARS = 2048
SUBSCRIPTION_FIELDS = ("callback_url", "batch_ms")
SECRET_HINT = (
    f"a webhook secret is {MIN_SECRET_CHARS} or more printable characters without spaces "
    "(make one: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
)
_SECRET_CHARS = re.compile(r"[\x21-\x7e]+")


class SignatureRejected(ProtocolError):
    """A delivery whose signature does not hold: missing, malformed, wrong or stale."""


def checked_secret(secret: str, where: str) -> str:
    secret = secret.strip()
    if len(secret) < MIN_SECRET_CHARS or not _SECRET_CHARS.fullmatch(secret):
        raise ProtocolError(f"the webhook secret in {where} is not usable: {SECRET_HINT}")
    return secret


# --- the subscription ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscription:
    """What `POST /v1/webhooks` asks for: a generation, where to deliver it, how to batch."""

    request: GenerationRequest
    callback_url: str
    batch_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        body = {**self.request.to_json(), "callback_url": self.callback_url}
        if self.batch_ms:
            body["batch_ms"] = self.batch_ms
        return body

    @classmethod
    def from_json(cls, body: Any) -> Subscription:
        """Validate a decoded body; `ProtocolError` names the bad field. The URL is only
        checked for shape here: where it may point is the server's policy."""
        if not isinstance(body, dict):
            raise ProtocolError("request body must be a JSON object")
        allowed = (*REQUEST_FIELDS, *SUBSCRIPTION_FIELDS)
        unknown = set(body) - set(allowed)
        if unknown:
            raise ProtocolError(
                f"unknown request field(s) {sorted(unknown)}; allowed: {', '.join(allowed)}"
            )
        url = body.get("callback_url")
        if not isinstance(url, str) or not url:
            raise ProtocolError("callback_url is required: the URL the server POSTs tokens to")
        if len(url) > MAX_URL_CHARS:
            raise ProtocolError(f"callback_url is longer than {MAX_URL_CHARS} characters")
        batch_ms = body.get("batch_ms", 0)
        if (
            not isinstance(batch_ms, int | float)
            or isinstance(batch_ms, bool)
            or not 0 <= batch_ms <= MAX_BATCH_MS
        ):
            raise ProtocolError(f"batch_ms must be a number from 0 to {MAX_BATCH_MS:g}")
        fields = {k: v for k, v in body.items() if k not in SUBSCRIPTION_FIELDS}
        return cls(GenerationRequest.from_json(fields), url, float(batch_ms))


def decode_subscribed(body: Any) -> str:
    """The stream id from the server's `202 {"id": ...}` answer."""
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise ProtocolError(f'expected {{"id": "..."}}, got {str(body)[:80]!r}')
    return str(body["id"])


# --- deliveries ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryHead:
    stream: str  # the stream id
    seq: int  # deliveries of a stream count 0, 1, 2, ...
    start: int  # the index of the first token in this delivery ("from" on the wire)

    def delivery_id(self) -> str:
        return f"{self.stream}:{self.seq}"


def encode_delivery(head: DeliveryHead, payloads: list[str]) -> bytes:
    first = dumps({"stream": head.stream, "seq": head.seq, "from": head.start})
    return b"".join(encode_line(p) for p in (first, *payloads))


def decode_delivery(body: bytes) -> tuple[DeliveryHead, list[str]]:
    """The head and the framed payloads of one delivery body."""
    if not body.endswith(b"\n"):
        raise ProtocolError("a delivery body is NDJSON: every line ends with a newline")
    try:
        lines = body.decode().split("\n")[:-1]
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"a delivery body is not UTF-8: {exc}") from exc
    head = loads(lines[0])
    if not isinstance(head, dict):
        raise ProtocolError(f"expected a delivery head object, got {lines[0][:80]!r}")
    stream, seq, start = head.get("stream"), head.get("seq"), head.get("from")
    if not isinstance(stream, str) or not STREAM_ID.fullmatch(stream):
        raise ProtocolError(f"bad delivery head stream: {lines[0][:80]!r}")
    if not (_is_count(seq) and _is_count(start)):
        raise ProtocolError(f"bad delivery head seq/from: {lines[0][:80]!r}")
    return DeliveryHead(stream, seq, start), [line.removesuffix("\r") for line in lines[1:]]


def _is_count(value: object) -> TypeGuard[int]:
    """A whole number from 0 up (JSON's true and false are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- signatures ---------------------------------------------------------------------------


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Tokenwire-Signature` value of `body` sent at Unix time `timestamp`."""
    return f"t={timestamp},{SCHEME}={_digest(secret, timestamp, body)}"


def verify(
    secret: str, header: str | None, body: bytes, now_s: float, tolerance_s: float = TOLERANCE_S
) -> int:
    """The signed timestamp when `header` signs `body` with `secret` and the timestamp is
    within `tolerance_s` of `now_s`; `SignatureRejected` saying why otherwise."""
    if not header:
        raise SignatureRejected(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureRejected(f"malformed {SIGNATURE_HEADER}: {header[:120]!r}")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureRejected(f"{SIGNATURE_HEADER} needs t=<unix time> and {SCHEME}=<hex>")
    expected = _digest(secret, timestamp, body).encode()
    matched = False
    for candidate in candidates:  # every one compared, in constant time
        matched |= hmac.compare_digest(expected, candidate.lower().encode(errors="replace"))
    if not matched:
        raise SignatureRejected("the signature does not match the body and the shared secret")
    if abs(now_s - timestamp) > tolerance_s:
        raise SignatureRejected(
            f"the signature's timestamp is {now_s - timestamp:+.0f} s off "
            f"(tolerance {tolerance_s:g} s): a stale or replayed delivery"
        )
    return timestamp
