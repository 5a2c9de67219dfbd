"""The webhook client: its exchange logic driven by hand (signatures checked, duplicates
dropped, tokens numbered), its callback receivers on the wire (both drivers), and real
streams whose receiver refuses forged callbacks and fails first attempts on purpose."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import async_client, blocking_client, serve

from clients import webhook
from clients.asyncio_io import AsyncStreamClient
from clients.blocking_io import BlockingClient
from clients.callbacks_asyncio import AsyncReceiver
from clients.callbacks_blocking import BlockingReceiver
from clients.callbacks_http import BadRequest, RequestParser, encode_answer
from clients.exchange import (
    LISTEN,
    AnswerCallback,
    Callback,
    Exchange,
    Fetch,
    ReceiveCallback,
    Reply,
)
from clients.interface import ClientSettings, StreamResult
from errors import ProtocolViolation
from harness.measure.run.timelines import fetch_timelines
from harness.measure.server_process import ServerProcess
from servers.sources.spec import SourceSpec
from wire.framing import JSON, OPENAI
from wire.messages import GenerationRequest
from wire.webhook import SECRET_ENV, DeliveryHead, encode_delivery, sign

SECRET = "a-test-secret-of-enough-length"
NOW = 1_700_000_000.0
URL = "http://127.0.0.1:1/callbacks/k"


# --- the logic, driven by hand ----------------------------------------------------------------


def delivery(stream: str, seq: int, start: int, payloads: list[str], when: float = NOW) -> Callback:
    body = encode_delivery(DeliveryHead(stream, seq, start), payloads)
    headers = {"x-tokenwire-signature": sign(SECRET, int(when), body)}
    return Callback("POST", "/callbacks/k", headers, body, now_ns=1_000 + seq, wall_s=NOW)


def tokens(start: int, texts: str) -> list[str]:
    return [JSON.encode_token("s", "m", start + k, t) for k, t in enumerate(texts)]


class Driven:
    """An exchange stepped by hand: the listen and subscribe replies given, then callbacks."""

    def __init__(self, settings: ClientSettings | None = None, stream_id: str = "s") -> None:
        self.settings = settings or ClientSettings(URL, webhook_secret=SECRET)
        self.result = StreamResult("webhook", stream_id, 0)
        self.steps: Exchange = webhook.exchange(
            self.settings, GenerationRequest(stream_id=stream_id), self.result
        )
        assert next(self.steps) == LISTEN
        subscribe = self.steps.send(URL)
        assert isinstance(subscribe, Fetch) and subscribe.call.json is not None
        assert subscribe.call.json["callback_url"] == URL
        body = f'{{"id":"{stream_id}"}}'.encode()
        assert isinstance(self.steps.send(Reply(202, {}, body, "/v1/webhooks", 0)), ReceiveCallback)
        self.done = False

    def give(self, callback: Callback) -> int:
        """The status the logic answers `callback` with."""
        answer = self.steps.send(callback)
        assert isinstance(answer, AnswerCallback)
        try:
            assert isinstance(self.steps.send(None), ReceiveCallback)
        except StopIteration:
            self.done = True
        return answer.status


def test_a_tampered_or_stale_callback_is_refused_and_changes_nothing() -> None:
    driven = Driven()
    good = delivery("s", 0, 0, tokens(0, "ab"))
    tampered = Callback("POST", good.path, good.headers, good.body.replace(b'"a"', b'"X"'), 1, NOW)
    unsigned = Callback("POST", good.path, {}, good.body, 1, NOW)
    stale = delivery("s", 0, 0, tokens(0, "ab"), when=NOW - 301)
    for forged in (tampered, unsigned, stale):
        assert driven.give(forged) == 401
    assert driven.result.indices == [] and driven.result.requests == 0
    assert driven.give(good) == 200
    assert driven.result.texts == ["a", "b"]


def test_a_repeated_delivery_is_taken_once() -> None:
    driven = Driven()
    first = delivery("s", 0, 0, tokens(0, "ab"))
    assert [driven.give(first), driven.give(first)] == [200, 200]  # the retry of a lost answer
    overlapping = delivery("s", 1, 1, tokens(1, "bcd"))
    assert driven.give(overlapping) == 200
    end = delivery("s", 2, 4, JSON.encode_end("s", "m", 4, None))
    assert driven.give(end) == 200 and driven.done
    assert driven.result.indices == [0, 1, 2, 3] and driven.result.texts == list("abcd")
    assert driven.result.chunk_sizes == [2, 2] and driven.result.end_tokens == 4


def test_tokens_of_a_framing_without_indices_are_numbered_from_the_head() -> None:
    driven = Driven(ClientSettings(URL, framing="openai", webhook_secret=SECRET))
    start = OPENAI.encode_start("s", "m")
    chunk = [OPENAI.encode_token("s", "m", 0, t) for t in "xyz"]
    assert driven.give(delivery("s", 0, 0, start + chunk[:2])) == 200
    assert driven.give(delivery("s", 0, 0, start + chunk[:2])) == 200  # again: nothing new
    assert driven.give(delivery("s", 1, 2, chunk[2:])) == 200
    assert driven.give(delivery("s", 2, 3, OPENAI.encode_end("s", "m", 3, None))) == 200
    assert driven.done and driven.result.indices == [0, 1, 2] and driven.result.texts == list("xyz")


def test_a_delivery_for_another_stream_or_out_of_place_is_a_protocol_violation() -> None:
    with pytest.raises(ProtocolViolation, match="reached stream 's'"):
        Driven().give(delivery("other", 0, 0, tokens(0, "a")))
    with pytest.raises(ProtocolViolation, match="token 0 where index 5 was due"):
        Driven().give(delivery("s", 0, 5, tokens(0, "a")))


def test_without_a_secret_a_callback_cannot_be_verified() -> None:
    driven = Driven(ClientSettings(URL, webhook_secret=None))
    with pytest.raises(ProtocolViolation, match=SECRET_ENV):
        driven.give(delivery("s", 0, 0, tokens(0, "a")))


def test_a_planned_drop_refuses_the_next_delivery_for_the_server_to_retry() -> None:
    driven = Driven(ClientSettings(URL, webhook_secret=SECRET, drop_at_token=1))
    assert driven.give(delivery("s", 0, 0, tokens(0, "a"))) == 200
    second = delivery("s", 1, 1, tokens(1, "b"))
    assert driven.give(second) == 503 and driven.result.drops_ns == [second.now_ns]
    assert driven.give(second) == 200 and driven.result.indices == [0, 1]


# --- HTTP/1.1 in the receiver -----------------------------------------------------------------

REQUEST = (
    b"POST /callbacks/k?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
    b"X-Tokenwire-Attempt: 1\r\n\r\nhello"
)


def test_the_request_parser_takes_requests_split_at_every_byte() -> None:
    for cut in range(len(REQUEST) + 1):
        parser = RequestParser()
        parser.feed(REQUEST[:cut])
        taken = [parser.next_request()]
        assert (taken[0] is None) == (cut < len(REQUEST))
        parser.feed(REQUEST[cut:] + b"\r\n" + REQUEST)  # two requests, a stray CRLF between
        taken += [parser.next_request(), parser.next_request(), parser.next_request()]
        requests = [r for r in taken if r is not None]
        assert len(requests) == 2 and requests[0] == requests[1]
        first = requests[0]
        assert (first.method, first.target, first.body) == ("POST", "/callbacks/k?x=1", b"hello")
        assert first.headers["x-tokenwire-attempt"] == "1" and first.keep_alive
        assert first.head_bytes == len(REQUEST) - 5


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"POST / HTTP/2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nbad header\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nX: " + b"a" * 20_000, 431),
    ],
)
def test_the_request_parser_refuses_what_is_not_a_request(data: bytes, status: int) -> None:
    parser = RequestParser()
    parser.feed(data)
    with pytest.raises(BadRequest) as refused:
        parser.next_request()
    assert refused.value.status == status


def test_answers_say_their_length_and_when_they_close() -> None:
    data, head = encode_answer(401, b'{"error":"x"}', keep_alive=False)
    assert data.startswith(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 13\r\n")
    assert b"connection: close\r\n" in data and len(data) == head + 13
    assert encode_answer(200, b"", True) == (b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 38)


def raw_exchange(port: int, data: bytes) -> bytes:
    """Bytes httpx would not send, and the answer, until the receiver closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        for _ in range(100):
            piece = sock.recv(65536)
            if not piece:
                return answer
            answer += piece
    return answer


def check_receiver_answers(port: int, url: str) -> None:
    """What any receiver answers on its own: 405, 410, 400; keep-alive for a mailbox."""
    with httpx.Client(trust_env=False, timeout=5) as http:
        assert http.get(url).status_code == 405
        gone = http.post(url.rsplit("/", 1)[0] + "/nobody", content=b"x")
        assert gone.status_code == 410 and "no stream listens" in gone.json()["error"]
    assert raw_exchange(port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request\r\n")


async def test_the_asyncio_receiver_holds_requests_until_the_stream_answers() -> None:
    receiver = AsyncReceiver()
    await receiver.start()
    mailbox = receiver.open()
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            posts = [
                asyncio.create_task(http.post(mailbox.url, content=f"b{k}".encode()))
                for k in range(2)
            ]
            bodies = []
            for status in (202, 418):
                inbound = await mailbox.next(5)
                assert inbound is not None and inbound.wire[1] >= len(REQUEST) - 40
                bodies.append(inbound.callback.body)
                assert mailbox.answer(status, b"") > 0
            assert sorted(bodies) == [b"b0", b"b1"]
            assert sorted([(await p).status_code for p in posts]) == [202, 418]
            late = asyncio.create_task(http.post(mailbox.url, content=b"late"))
            assert await mailbox.next(5) is not None
            mailbox.close()  # the stream ended with the request unanswered
            assert (await late).status_code == 410
        assert await mailbox.next(0.05) is None
        await asyncio.to_thread(check_receiver_answers, receiver.port, mailbox.url)
    finally:
        await receiver.aclose()


def test_the_blocking_receiver_holds_requests_until_the_stream_answers() -> None:
    receiver = BlockingReceiver()
    mailbox = receiver.open()
    try:
        with httpx.Client(trust_env=False, timeout=5) as http:
            statuses: list[int] = []
            poster = threading.Thread(
                target=lambda: statuses.append(http.post(mailbox.url, content=b"one").status_code)
            )
            poster.start()
            inbound = mailbox.next(5)
            assert inbound is not None and inbound.callback.body == b"one"
            mailbox.answer(204, b"")
            poster.join(5)
            assert statuses == [204]
        check_receiver_answers(receiver.port, mailbox.url)
    finally:
        receiver.close()
    assert mailbox.next(0.05) is None


# --- real streams -----------------------------------------------------------------------------

FAST = SourceSpec(preset="chat", ttft_ms=10, tokens_per_s=300, tokens_per_response=400)


@pytest.fixture(scope="module")
def retrying_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A failed delivery is retried 5 ms later."""
    yield from serve(tmp_path_factory, "retrying", FAST, "--webhook-retry-ms", "5")


def failing_first_attempts(log: list[tuple[str, str, int]]) -> Any:
    """The webhook logic behind a receiver that fails every delivery's first attempt *after*
    the logic took it (as when an answer is lost): the server retries, the logic must drop
    what it already has."""

    def exchange(
        settings: ClientSettings, request: GenerationRequest, result: StreamResult
    ) -> Exchange:
        steps = webhook.exchange(settings, request, result)
        reply: object = None
        callback: Callback | None = None
        while True:
            try:
                effect = steps.send(reply)
            except StopIteration:
                return
            if isinstance(effect, AnswerCallback) and callback is not None:
                attempt = callback.headers.get("x-tokenwire-attempt", "")
                delivery_id = callback.headers.get("x-tokenwire-delivery", "")
                status = 503 if attempt == "1" else effect.status
                log.append((delivery_id, attempt, status))
                effect = AnswerCallback(status, effect.body)
            reply = yield effect
            callback = reply if isinstance(reply, Callback) else callback

    return exchange


def check_every_index_once(result: StreamResult, log: list[tuple[str, str, int]]) -> None:
    assert result.error is None, result.error
    assert result.end_tokens == 40 and result.indices == list(range(40))
    deliveries = {d for d, _, _ in log}
    assert {(d, "1", 503) for d in deliveries} <= set(log)  # every first attempt failed
    assert {(d, "2", 200) for d in deliveries if not d.endswith(":40")} <= set(log)
    assert len(deliveries) == 41  # a POST per token, and the terminal one
    assert result.requests == 1 + len(log)  # the subscription, and every POST received


async def test_retries_with_dedup_deliver_every_index_once(retrying_server: ServerProcess) -> None:
    log: list[tuple[str, str, int]] = []
    settings = ClientSettings(base_url=retrying_server.base_url)
    client = AsyncStreamClient("webhook", failing_first_attempts(log), settings)
    try:
        request = GenerationRequest(seed=1, max_tokens=40, stream_id="retried-async")
        result = await client.stream(request, time.perf_counter_ns())
    finally:
        await client.aclose()
    check_every_index_once(result, log)


def test_the_blocking_client_retries_and_dedups_too(retrying_server: ServerProcess) -> None:
    log: list[tuple[str, str, int]] = []
    settings = ClientSettings(base_url=retrying_server.base_url)
    client = BlockingClient("webhook", failing_first_attempts(log), settings)
    try:
        request = GenerationRequest(seed=1, max_tokens=40, stream_id="retried-blocking")
        result = client.stream(request, time.perf_counter_ns())
    finally:
        client.close()
    check_every_index_once(result, log)


def capturing_url(seen: dict[str, str]) -> Any:
    """The webhook logic, telling the test its callback URL."""

    def exchange(
        settings: ClientSettings, request: GenerationRequest, result: StreamResult
    ) -> Exchange:
        steps = webhook.exchange(settings, request, result)
        reply: object = None
        while True:
            try:
                effect = steps.send(reply)
            except StopIteration:
                return
            reply = yield effect
            if effect == LISTEN:
                seen["url"] = str(reply)

    return exchange


async def test_a_forged_callback_is_refused_with_401_and_the_stream_goes_on(
    retrying_server: ServerProcess,
) -> None:
    seen: dict[str, str] = {}
    settings = ClientSettings(base_url=retrying_server.base_url)
    client = AsyncStreamClient("webhook", capturing_url(seen), settings)
    request = GenerationRequest(seed=2, max_tokens=60, stream_id="forged")
    running = asyncio.create_task(client.stream(request, time.perf_counter_ns()))
    try:
        for _ in range(500):
            if "url" in seen:
                break
            await asyncio.sleep(0.002)
        forged_body = encode_delivery(DeliveryHead("forged", 0, 0), tokens(0, "evil"))
        wrong_secret = sign("not-the-server-secret-at-all", int(time.time()), forged_body)
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            forged = await http.post(
                seen["url"], content=forged_body, headers={"X-Tokenwire-Signature": wrong_secret}
            )
        result = await running
    finally:
        await client.aclose()
    assert forged.status_code == 401 and "does not match" in forged.json()["error"]
    assert result.error is None and result.indices == list(range(60))
    timelines = await fetch_timelines(retrying_server.base_url, ["forged"])
    assert result.texts == timelines["forged"].texts  # nothing of the forgery got in


def test_a_shared_secret_reaches_both_sides() -> None:
    assert os.environ.get(SECRET_ENV)  # start_server made one, in this process's environment
    assert ClientSettings("http://x").webhook_secret == os.environ[SECRET_ENV]
    assert "webhook_secret" not in repr(ClientSettings("http://x"))


def test_the_parametrised_helpers_make_webhook_clients(retrying_server: ServerProcess) -> None:
    """`support.async_client` and `blocking_client` build webhook clients from the registry."""
    settings = ClientSettings(base_url=retrying_server.base_url, knobs=(("batch_ms", 30.0),))
    client = blocking_client("webhook", settings)
    try:
        request = GenerationRequest(seed=3, max_tokens=30, stream_id="batched-blocking")
        result = client.stream(request, time.perf_counter_ns())
    finally:
        client.close()
    assert result.error is None and result.indices == list(range(30))
    assert max(result.chunk_sizes) > 1 and result.requests < 30
    assert isinstance(async_client("webhook", settings), AsyncStreamClient)
