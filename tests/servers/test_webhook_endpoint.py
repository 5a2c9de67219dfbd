"""The webhook endpoint and its sender (servers/webhook.py): what it refuses (4xx JSON, never
a 500), what it POSTs (signed NDJSON deliveries, in order, batched by `batch_ms`), how it
retries, and when it gives up. The deliveries land in a callback receiver of the clients
(`clients.callbacks_asyncio.AsyncReceiver`), answered here by hand."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support import serve

from clients.callbacks_asyncio import AsyncMailbox, AsyncReceiver
from clients.callbacks_http import Inbound
from errors import RequestRefused, ServerSettingsError
from harness.measure.server_process import ServerProcess
from servers.app import create_app
from servers.settings import ServerSettings, WebhookSecret
from servers.sources.mock import MockSource, profile_for
from servers.sources.spec import SourceSpec
from servers.webhook import allowed_callback, backoff_s
from wire.framing import get_framing
from wire.messages import EndMsg, TokenMsg
from wire.webhook import SECRET_ENV, decode_delivery, verify

RETRY_MS = 20
ATTEMPTS = 3
SPEC = SourceSpec(preset="chat", ttft_ms=10, tokens_per_s=400, tokens_per_response=400)
SHORT = 12  # tokens of the streams that run to their end (the others run about 1 s)


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """About 1 s streams (capped to 12 tokens where they are to end); a failed delivery is
    tried 3 times, 20 ms then 40 ms apart."""
    args = ("--webhook-attempts", str(ATTEMPTS), "--webhook-retry-ms", str(RETRY_MS))
    yield from serve(tmp_path_factory, "webhooks", SPEC, *args)


@pytest.fixture
async def http(hook_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=hook_server.base_url, trust_env=False) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[AsyncReceiver]:
    receiver = AsyncReceiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.aclose()


def secret() -> str:
    return os.environ[SECRET_ENV]  # set by start_server, shared with the server process


async def timeline(http: httpx.AsyncClient, stream_id: str, within_s: float = 5) -> dict:
    deadline = time.monotonic() + within_s
    while True:
        answer = (await http.get(f"/v1/streams/{stream_id}/timeline?texts=true")).json()
        if answer.get("done") or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.02)


async def take_all(
    mailbox: AsyncMailbox, answer: Callable[[Inbound, int], int] | None = None
) -> list[Inbound]:
    """Every delivery up to the terminal one, answered 200 unless `answer(inbound, k)` says
    otherwise (status, headers)."""
    taken: list[Inbound] = []
    for k in range(500):
        inbound = await mailbox.next(5)
        assert inbound is not None, "no delivery within 5 s"
        taken.append(inbound)
        status = 200 if answer is None else answer(inbound, k)
        mailbox.answer(status, b"")
        _, payloads = decode_delivery(inbound.callback.body)
        if status == 200 and any(
            isinstance(get_framing("json").decode(p), EndMsg) for p in payloads
        ):
            return taken
    raise AssertionError("no terminal delivery")


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "needle"),
    [
        ("http://example.com/cb", 403, "not on loopback and not on --webhook-allow"),
        ("http://10.0.0.1:8080/cb", 403, "not on loopback"),
        ("http://169.254.169.254/latest/meta-data/", 403, "not on loopback"),
        ("http://0.0.0.0:9/cb", 403, "not on loopback"),
        ("http://127.1:9/cb", 403, "not on loopback"),  # not a canonical address: a name
        ("http://[::ffff:127.0.0.1]:9/cb", 403, "not on loopback"),
        ("https://metadata.google.internal/", 403, "not on loopback"),
        ("ftp://127.0.0.1/cb", 400, "must be an http(s) URL"),
        ("http://user:pw@127.0.0.1:9/cb", 400, "no user name, password or fragment"),
        ("http://127.0.0.1\\@evil.example/cb", 400, "no user name, password or fragment"),
        ("http://127.0.0.1:9/cb#frag", 400, "no user name, password or fragment"),
        ("http://127.0.0.1:99999/cb", 400, "is not a URL"),
        ("not a url", 400, "must be an http(s) URL"),
    ],
)
async def test_a_callback_url_outside_loopback_is_refused_before_anything_starts(
    http: httpx.AsyncClient, url: str, status: int, needle: str
) -> None:
    stream_id = f"refused-{abs(hash(url)) % 10**9}"
    body = {"seed": 1, "stream_id": stream_id, "callback_url": url}
    answer = await http.post("/v1/webhooks", json=body)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert needle in answer.json()["error"]
    assert (await http.get(f"/v1/streams/{stream_id}/timeline")).status_code == 404


@pytest.mark.parametrize(
    ("body", "query", "status", "needle"),
    [
        (b"{}", "", 400, "callback_url is required"),
        (b'{"callback_url": "http://127.0.0.1:9/", "batch_ms": -5}', "", 400, "batch_ms"),
        (
            b'{"callback_url": "http://127.0.0.1:9/", "colour": 1}',
            "",
            400,
            "callback_url, batch_ms",
        ),
        (b'{"callback_url": "http://127.0.0.1:9/", "max_tokens": 0}', "", 400, "max_tokens"),
        (b"{nope", "", 400, "invalid JSON"),
        (b"[]", "", 400, "must be a JSON object"),
        (b"{}", "?framing=xml", 400, "unknown framing 'xml'"),
        (b"{}", "?framing=raw", 400, "framing raw cannot travel over webhook"),
    ],
)
async def test_a_bad_subscription_gets_a_4xx_json_error(
    http: httpx.AsyncClient, body: bytes, query: str, status: int, needle: str
) -> None:
    headers = {"content-type": "application/json"}
    answer = await http.post("/v1/webhooks" + query, content=body, headers=headers)
    assert answer.status_code == status
    assert needle in answer.json()["error"]


async def test_a_taken_stream_id_is_a_conflict(http: httpx.AsyncClient) -> None:
    body = {"stream_id": "hook-twice", "callback_url": "http://127.0.0.1:9/x", "max_tokens": 1}
    first = await http.post("/v1/webhooks", json=body)
    second = await http.post("/v1/webhooks", json=body)
    assert (first.status_code, second.status_code) == (202, 409)
    assert first.json() == {"id": "hook-twice", "callback_url": body["callback_url"], "batch_ms": 0}


def test_the_allow_list_names_origins_callbacks_may_reach() -> None:
    allow = ("https://hooks.example.com", "http://[2001:db8::1]:8080")
    for url in (
        "https://hooks.example.com/a?b=c",
        "https://HOOKS.example.com:443/a",
        "http://[2001:db8::1]:8080/x",
        "http://localhost:1/x",
        "http://127.0.0.9:1/x",
        "http://[::1]:1/x",
    ):
        assert allowed_callback(url, allow) == url
    for url in (
        "http://hooks.example.com/a",
        "https://hooks.example.com:8443/",
        "http://[2001:db8::1]/",
    ):
        with pytest.raises(RequestRefused) as refused:
            allowed_callback(url, allow)
        assert refused.value.status == 403


def test_retries_back_off_exponentially_within_a_bound() -> None:
    settings = ServerSettings(webhook_retry_ms=100)
    assert [backoff_s(settings, k, None) for k in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert backoff_s(settings, 30, None) == 10.0
    assert backoff_s(settings, 1, "3") == 3.0 and backoff_s(settings, 1, "999") == 10.0
    assert backoff_s(settings, 2, "soon") == 0.2


async def test_a_server_without_a_secret_refuses_subscriptions() -> None:
    app = create_app(MockSource(profile_for("instant")), ServerSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        answer = await client.post("/v1/webhooks", json={"callback_url": "http://127.0.0.1:9/"})
    assert answer.status_code == 503
    assert "no webhook secret" in answer.json()["error"] and SECRET_ENV in answer.json()["error"]


# --- deliveries -----------------------------------------------------------------------------


async def subscribe(
    http: httpx.AsyncClient, mailbox: AsyncMailbox, stream_id: str, **extra: object
) -> None:
    body = {"seed": 2, "stream_id": stream_id, "callback_url": mailbox.url, **extra}
    body.setdefault("max_tokens", SHORT)
    answer = await http.post("/v1/webhooks", json=body)
    assert answer.status_code == 202, answer.text


async def test_every_token_is_a_signed_post_then_the_terminal_one(
    http: httpx.AsyncClient, receiver: AsyncReceiver
) -> None:
    mailbox = receiver.open()
    await subscribe(http, mailbox, "hook-each")
    taken = await take_all(mailbox)
    line = await timeline(http, "hook-each")
    assert len(taken) == line["tokens"] + 1  # one POST per token, and the terminal one
    texts = []
    for seq, inbound in enumerate(taken):
        call = inbound.callback
        assert call.method == "POST" and call.path == mailbox.url.split(str(receiver.port))[1]
        assert call.headers["content-type"] == "application/x-ndjson"
        assert call.headers["x-tokenwire-delivery"] == f"hook-each:{seq}"
        assert call.headers["x-tokenwire-attempt"] == "1"
        verify(secret(), call.headers["x-tokenwire-signature"], call.body, time.time())
        head, payloads = decode_delivery(call.body)
        assert (head.stream, head.seq, head.start) == ("hook-each", seq, min(seq, line["tokens"]))
        messages = [get_framing("json").decode(p) for p in payloads]
        texts += [m.text for m in messages if isinstance(m, TokenMsg)]
        assert len(messages) == 1
    assert messages == [EndMsg(tokens=line["tokens"], stream_id="hook-each")]
    assert texts == line["texts"] and line["tokens"] == SHORT


async def test_batch_ms_gathers_tokens_per_post(
    http: httpx.AsyncClient, receiver: AsyncReceiver
) -> None:
    mailbox = receiver.open()
    await subscribe(http, mailbox, "hook-batched", batch_ms=20)
    taken = await take_all(mailbox)
    line = await timeline(http, "hook-batched")
    counts, start = [], 0
    for inbound in taken[:-1]:
        head, payloads = decode_delivery(inbound.callback.body)
        assert head.start == start
        counts.append(len(payloads))
        start += len(payloads)
    assert start == line["tokens"] and len(taken) - 1 < line["tokens"] and max(counts) > 1


async def test_openai_deliveries_carry_the_start_and_end_chunks(
    http: httpx.AsyncClient, receiver: AsyncReceiver
) -> None:
    mailbox = receiver.open()
    body = {"seed": 2, "stream_id": "hook-openai", "callback_url": mailbox.url, "max_tokens": 2}
    assert (await http.post("/v1/webhooks?framing=openai", json=body)).status_code == 202
    bodies = []
    for _ in range(3):
        inbound = await mailbox.next(5)
        assert inbound is not None
        mailbox.answer(200, b"")
        bodies.append(decode_delivery(inbound.callback.body)[1])
    assert '"role":"assistant"' in bodies[0][0] and len(bodies[0]) == 2
    assert len(bodies[1]) == 1 and bodies[2][-1] == "[DONE]"


async def test_a_failed_delivery_is_retried_signed_afresh_and_nothing_is_skipped(
    http: httpx.AsyncClient, receiver: AsyncReceiver
) -> None:
    mailbox = receiver.open()
    await subscribe(http, mailbox, "hook-retried")
    taken = await take_all(mailbox, lambda inbound, k: 503 if k % 2 == 0 else 200)
    pairs = list(zip(taken[::2], taken[1::2], strict=True))
    for failed, retried in pairs:
        first, second = failed.callback, retried.callback
        assert second.headers["x-tokenwire-delivery"] == first.headers["x-tokenwire-delivery"]
        assert (first.headers["x-tokenwire-attempt"], second.headers["x-tokenwire-attempt"]) == (
            "1",
            "2",
        )
        assert second.body == first.body
        verify(secret(), second.headers["x-tokenwire-signature"], second.body, time.time())
        assert (second.now_ns - first.now_ns) / 1e6 >= RETRY_MS * 0.9
    line = await timeline(http, "hook-retried")
    assert line["error"] is None and len(pairs) == line["tokens"] + 1


async def test_a_gone_receiver_cancels_the_generation(
    http: httpx.AsyncClient, receiver: AsyncReceiver
) -> None:
    mailbox = receiver.open()
    await subscribe(http, mailbox, "hook-gone", max_tokens=None)
    assert await mailbox.next(5) is not None
    mailbox.answer(200, b"")
    mailbox.close()  # the next POST gets 410 Gone from the receiver
    line = await timeline(http, "hook-gone")
    assert line["done"] and line["error"] == "cancelled: the callback URL answered 410"
    assert line["tokens"] < 400


async def test_a_delivery_that_keeps_failing_cancels_after_the_last_attempt(
    http: httpx.AsyncClient, receiver: AsyncReceiver
) -> None:
    mailbox = receiver.open()
    await subscribe(http, mailbox, "hook-down", max_tokens=None)
    attempts = []
    for _ in range(ATTEMPTS):
        inbound = await mailbox.next(5)
        assert inbound is not None
        attempts.append(inbound.callback.headers["x-tokenwire-attempt"])
        mailbox.answer(500, b"")
    line = await timeline(http, "hook-down")
    assert attempts == ["1", "2", "3"]
    assert line["error"] == (
        f"cancelled: webhook delivery hook-down:0 failed {ATTEMPTS} times "
        "(the callback URL answered 500)"
    )


async def test_redirects_are_not_followed(http: httpx.AsyncClient, receiver: AsyncReceiver) -> None:
    mailbox, elsewhere = receiver.open(), receiver.open()
    await subscribe(http, mailbox, "hook-redirected", max_tokens=None)
    inbound = await mailbox.next(5)
    assert inbound is not None
    # the answer is composed by hand: the receiver's own answers carry no Location
    taken, mailbox.current = mailbox.current, None
    assert taken is not None
    _, answered = taken
    location = (
        f"HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere.url}\r\ncontent-length: 0\r\n\r\n"
    )
    answered.set_result(location.encode())
    line = await timeline(http, "hook-redirected")
    assert line["error"] == "cancelled: the callback URL answered 307"
    assert await elsewhere.next(0.2) is None


def test_the_secret_comes_from_a_file_or_the_environment_and_never_shows(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("\n  file-secret-0123456789  \nignored\n")
    from_file = WebhookSecret.load(str(secret_file), environ={})
    assert from_file.value == "file-secret-0123456789" and from_file.path == secret_file
    from_env = WebhookSecret.load(None, environ={SECRET_ENV: "env-secret-0123456789"})
    assert from_env.value == "env-secret-0123456789" and from_env.path is None
    assert not WebhookSecret.load(None, environ={})
    settings = ServerSettings(webhook_secret=from_file, webhook_allow=("https://h.example",))
    args = settings.to_args()
    assert args == [
        "--webhook-secret-file",
        str(secret_file),
        "--webhook-allow",
        "https://h.example",
    ]
    assert "file-secret" not in repr(settings) + " ".join(args)
    assert ServerSettings(webhook_secret=from_env).to_args() == []  # it travels in the environment
    for bad in ("short", ""):
        secret_file.write_text(bad)
        with pytest.raises(ServerSettingsError, match="not usable"):
            WebhookSecret.load(str(secret_file), environ={})
    with pytest.raises(ServerSettingsError, match="cannot read --webhook-secret-file"):
        WebhookSecret.load(str(tmp_path / "missing"), environ={})
