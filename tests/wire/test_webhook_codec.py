"""Webhook codecs: the subscription, the delivery body and its signature (wire/webhook.py)."""

from __future__ import annotations

import pytest

from errors import ProtocolError
from wire.framing import JSON
from wire.messages import GenerationRequest
from wire.webhook import (
    DeliveryHead,
    SignatureRejected,
    Subscription,
    checked_secret,
    decode_delivery,
    decode_subscribed,
    encode_delivery,
    sign,
    verify,
)

SECRET = "s3cret-s3cret-s3cret"
NOW = 1_717_171_717
BODY = b'{"stream":"a","seq":0,"from":0}\n{"i":0,"t":"hi"}\n'


def flipped_last_digit(header: str) -> str:
    return header[:-1] + ("1" if header.endswith("0") else "0")


def test_a_signature_verifies_and_names_its_timestamp() -> None:
    header = sign(SECRET, NOW, BODY)
    assert header.startswith(f"t={NOW},v1=") and len(header.split("v1=")[1]) == 64
    assert verify(SECRET, header, BODY, NOW + 5) == NOW


@pytest.mark.parametrize(
    ("secret", "header", "body", "needle"),
    [
        (SECRET, sign(SECRET, NOW, BODY), BODY.replace(b"hi", b"ho"), "does not match"),
        ("another-secret-entirely", sign(SECRET, NOW, BODY), BODY, "does not match"),
        (SECRET, sign(SECRET, NOW, BODY).replace(f"t={NOW}", f"t={NOW + 1}"), BODY, "match"),
        (SECRET, flipped_last_digit(sign(SECRET, NOW, BODY)), BODY, "does not match"),
        (SECRET, None, BODY, "no X-Tokenwire-Signature"),
        (SECRET, "", BODY, "no X-Tokenwire-Signature"),
        (SECRET, "v1=abc", BODY, "needs t="),
        (SECRET, f"t={NOW}", BODY, "needs t="),
        (SECRET, "garbage", BODY, "malformed"),
        (SECRET, f"t={NOW},v1=\u00e9\u00e9", BODY, "does not match"),
    ],
)
def test_a_tampered_or_missing_signature_is_rejected(
    secret: str, header: str | None, body: bytes, needle: str
) -> None:
    with pytest.raises(SignatureRejected, match=needle):
        verify(secret, header, body, NOW)


@pytest.mark.parametrize("skew_s", [-301, 301, 10_000])
def test_a_stale_or_future_timestamp_is_rejected(skew_s: int) -> None:
    header = sign(SECRET, NOW, BODY)
    with pytest.raises(SignatureRejected, match="stale or replayed"):
        verify(SECRET, header, BODY, NOW + skew_s)
    assert verify(SECRET, header, BODY, NOW + skew_s, tolerance_s=abs(skew_s)) == NOW


def test_any_of_several_signatures_may_match_while_a_secret_rotates() -> None:
    old = sign("the-old-secret-0123", NOW, BODY).split(",")[1]
    header = f"{sign(SECRET, NOW, BODY)},{old}"
    assert verify(SECRET, header, BODY, NOW) == NOW
    assert verify("the-old-secret-0123", header, BODY, NOW) == NOW


def test_deliveries_round_trip_with_their_head() -> None:
    payloads = [JSON.encode_token("a", "m", 7, t) for t in ("\r\n", "\u2028", "🎉", "[DONE]")]
    body = encode_delivery(DeliveryHead("str-1", 3, 7), payloads)
    assert body.startswith(b'{"stream":"str-1","seq":3,"from":7}\n') and body.endswith(b"\n")
    head, decoded = decode_delivery(body)
    assert head == DeliveryHead("str-1", 3, 7) and head.delivery_id() == "str-1:3"
    assert decoded == payloads


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"stream":"a","seq":0,"from":0}',  # no final newline
        b"[1]\n",
        b'{"stream":"a b","seq":0,"from":0}\n',
        b'{"stream":"a","seq":-1,"from":0}\n',
        b'{"stream":"a","seq":0,"from":true}\n',
        b'{"stream":"a","seq":0,"from":0}\n\xff\n',
    ],
)
def test_a_bad_delivery_body_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_delivery(body)


def test_a_subscription_is_the_request_plus_callback_url_and_batch_ms() -> None:
    request = GenerationRequest(seed=3, stream_id="w-1")
    sub = Subscription(request, "http://127.0.0.1:9/cb", 20)
    assert sub.to_json() == {
        **request.to_json(),
        "callback_url": "http://127.0.0.1:9/cb",
        "batch_ms": 20,
    }
    assert Subscription.from_json(sub.to_json()) == sub
    plain = Subscription(request, "http://127.0.0.1:9/cb")
    assert "batch_ms" not in plain.to_json() and Subscription.from_json(plain.to_json()) == plain
    assert decode_subscribed({"id": "w-1", "batch_ms": 0}) == "w-1"
    with pytest.raises(ProtocolError):
        decode_subscribed({"nope": 1})


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "callback_url is required"),
        ({"callback_url": 3}, "callback_url is required"),
        ({"callback_url": "http://x/" + "a" * 3000}, "longer than"),
        ({"callback_url": "http://x/", "batch_ms": -1}, "batch_ms must be"),
        ({"callback_url": "http://x/", "batch_ms": True}, "batch_ms must be"),
        ({"callback_url": "http://x/", "batch_ms": 60_001}, "batch_ms must be"),
        ({"callback_url": "http://x/", "colour": 1}, "allowed: seed, max_tokens, prompt"),
        ({"callback_url": "http://x/", "seed": -1}, "seed must be"),
        ([], "must be a JSON object"),
    ],
)
def test_a_bad_subscription_names_its_field(body: object, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle):
        Subscription.from_json(body)


def test_a_secret_must_be_long_and_printable() -> None:
    assert checked_secret("  " + SECRET + "\n", "here") == SECRET
    for bad in ("short", "has a space in it, long enough", ""):
        with pytest.raises(ProtocolError, match="not usable"):
            checked_secret(bad, "here")
