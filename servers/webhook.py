"""Webhooks: `POST /v1/webhooks` starts a generation and the server POSTs it to the
client's `callback_url`, signed, batched, retried (docs/wire-protocol.md, `wire/webhook.py`).

The body is the generation request plus `callback_url` and an optional `batch_ms`; the
answer is `202 {"id", "callback_url", "batch_ms"}`. A delivery task then follows the
generation:

- `batch_ms` 0: one POST per token, in order, each sent as soon as the token exists and
  the previous POST was answered. `batch_ms` > 0: the first token not yet sent opens a
  window of `batch_ms`; when it closes (or the generation ends) every token that exists
  goes in one POST. Fewer requests, later tokens: the polling interval's trade-off.
- Then the terminal POST: the framing's end messages.
- Every POST is signed (`X-Tokenwire-Signature`), carries `X-Tokenwire-Delivery`
  (`<stream>:<seq>`) and `X-Tokenwire-Attempt`. A POST that fails (no connection, a
  timeout, 408, 425, 429 or 5xx) is retried after `webhook_retry_ms`, doubled at each retry
  (at most `MAX_BACKOFF_S`, or longer when a `Retry-After` asks for it, up to that bound), at
  most `webhook_attempts` tries in all; deliveries never overtake each other. Any other
  answer (401, 404, 410, ...) is final. A delivery that cannot be made cancels the
  generation: nobody is listening any more.

Where callbacks may go: loopback addresses (`127.0.0.0/8`, `::1`, `localhost`) and the
origins on `ServerSettings.webhook_allow`. Anything else is refused with 403 before a
generation starts: a sender that POSTs wherever it is told is a server-side request
forgery hole. The sender follows no redirects and reads no proxy settings from the
environment. All deliveries share one pooled `httpx.AsyncClient`
(`ServerState.webhook_sender`), made at start-up and closed with the server
(`servers.core.running`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
from fastapi import APIRouter, Query, Request, Response

from errors import ProtocolError, RequestRefused
from servers.exchange import Answer, Call, Route, json_answer
from servers.generation import Generation
from servers.request_parsing import (
    call_body,
    check_limits,
    decoded_body,
    framing_named,
    read_body,
)
from servers.responses import whole_response
from servers.settings import WEBHOOK_SECRET_ENV, ServerSettings, is_loopback_host, normal_origin
from servers.state import ServerState, start_generation, state_of
from wire.framing import Framing
from wire.webhook import (
    ATTEMPT_HEADER,
    CONTENT_TYPE,
    DELIVERY_HEADER,
    PATH,
    SIGNATURE_HEADER,
    DeliveryHead,
    Subscription,
    encode_delivery,
    sign,
)

NAME = "webhook"  # as the registry names it: the framings say whether they travel over it
MAX_BACKOFF_S = 10.0
USER_AGENT = "tokenwire-webhook/1"
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_DELIVERIES = 1 << 40  # a bound for the loop: a stream has far fewer tokens
NEVER = 1 << 62  # an index no generation reaches: wait for the end or the timeout


router = APIRouter(tags=["webhook"])


class DeliveryFailed(Exception):
    """A delivery that will not be made: a final answer, or every attempt failed."""


def allowed_callback(url: str, allow: tuple[str, ...]) -> httpx.URL:
    """`url`, parsed as the sender will use it, when callbacks may go there; RequestRefused
    otherwise (400 malformed, 403 not allowed). One parser decides and sends: no gap between
    what is checked and what is reached."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise RequestRefused(400, f"callback_url {url[:200]!r} is not a URL") from None
    scheme, host, port = parsed.scheme, parsed.host, parsed.port
    if scheme not in ("http", "https") or not host:
        raise RequestRefused(400, f"callback_url must be an http(s) URL, got {url[:200]!r}")
    if port is not None and not 0 < port < 65536:
        raise RequestRefused(400, f"callback_url {url[:200]!r} is not a URL (port {port})")
    if parsed.userinfo or parsed.fragment:
        raise RequestRefused(400, "callback_url must carry no user name, password or fragment")
    if is_loopback_host(host):
        return parsed
    netloc = f"[{host}]" if ":" in host else host
    origin = normal_origin(f"{scheme}://{netloc}" + ("" if port is None else f":{port}"))
    if origin is not None and origin in allow:
        return parsed
    raise RequestRefused(
        403,
        f"callback_url {origin or url[:200]!r} is not on loopback and not on --webhook-allow: "
        "this server POSTs only to loopback and to the origins it is told to trust",
    )


def backoff_s(settings: ServerSettings, attempt: int, retry_after: str | None) -> float:
    """The wait before attempt `attempt + 1`: `webhook_retry_ms` doubled per retry, bounded;
    a `Retry-After` in seconds asks for longer (never past the bound)."""
    wait = settings.webhook_retry_ms / 1000 * 2 ** (attempt - 1)
    if retry_after is not None and retry_after.strip().isdigit():
        wait = max(wait, float(retry_after))
    return min(wait, MAX_BACKOFF_S)


@dataclass
class Delivery:
    """One subscription's deliveries, from the first token to the terminal POST."""

    sender: WebhookSender
    gen: Generation
    framing: Framing
    model: str
    subscription: Subscription
    secret: str
    url: httpx.URL  # the callback URL as `allowed_callback` parsed and checked it
    seq: int = 0

    async def run(self) -> None:
        try:
            with self.gen.reading():  # a followed generation is never reaped as idle
                await self.deliver_all()
        except DeliveryFailed as exc:
            self.gen.cancel(str(exc))
        except Exception as exc:  # a bug: the stream ends, named, and the server goes on
            self.gen.cancel(f"webhook delivery failed: {type(exc).__name__}: {exc}"[:300])

    async def deliver_all(self) -> None:
        gen, batch_s = self.gen, self.subscription.batch_ms / 1000
        start = self.framing.encode_start(gen.id, self.model)
        sent = 0
        for _ in range(MAX_DELIVERIES):
            await gen.wait_beyond(sent)
            if len(gen.texts) > sent:
                if batch_s > 0 and not gen.done:
                    await gen.wait_beyond(NEVER, batch_s)  # the window: until it closes or ends
                end = len(gen.texts) if batch_s > 0 else sent + 1
                payloads = [
                    self.framing.encode_token(gen.id, self.model, i, gen.texts[i])
                    for i in range(sent, end)
                ]
                await self.post(sent, start + payloads)
                start, sent = [], end
            elif gen.done:
                end_messages = self.framing.end(
                    gen.id, self.model, sent, gen.error, gen.request.tool_call()
                )
                await self.post(sent, start + end_messages)
                return

    async def post(self, first_index: int, payloads: list[str]) -> None:
        head = DeliveryHead(self.gen.id, self.seq, first_index)
        self.seq += 1
        body = encode_delivery(head, payloads)
        settings = self.sender.settings
        attempts = max(1, settings.webhook_attempts)
        reason = ""
        for attempt in range(1, attempts + 1):
            headers = {
                "Content-Type": CONTENT_TYPE,
                SIGNATURE_HEADER: sign(self.secret, int(time.time()), body),
                DELIVERY_HEADER: head.delivery_id(),
                ATTEMPT_HEADER: str(attempt),
            }
            retry_after = None
            try:
                answer = await self.sender.http.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"[:200]
            else:
                if 200 <= answer.status_code < 300:
                    return
                reason = f"the callback URL answered {answer.status_code}"
                if answer.status_code not in RETRYABLE:
                    raise DeliveryFailed(reason)
                retry_after = answer.headers.get("retry-after")
            if attempt < attempts:
                await asyncio.sleep(backoff_s(settings, attempt, retry_after))
        raise DeliveryFailed(
            f"webhook delivery {head.delivery_id()} failed {attempts} times ({reason})"
        )


@dataclass
class WebhookSender:
    """The app's deliveries and the one pooled HTTP client they share."""

    settings: ServerSettings
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _http: httpx.AsyncClient | None = None

    def open(self) -> None:
        """Make the pooled client now (else on first use)."""
        _ = self.http

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            connections = self.settings.webhook_max_connections
            self._http = httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                ),
                timeout=httpx.Timeout(self.settings.webhook_timeout_s),
                follow_redirects=False,  # a redirect could lead anywhere
                trust_env=False,  # no proxy from the environment
                headers={"User-Agent": USER_AGENT},
            )
            for name in ("accept", "accept-encoding"):  # answers are read and dropped
                del self._http.headers[name]
        return self._http

    def start(self, delivery: Delivery) -> None:
        task = asyncio.create_task(delivery.run(), name=f"webhook-{delivery.gen.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
        if self._http is not None:
            await self._http.aclose()


def subscribed(state: ServerState, body: bytes, framing: str) -> Answer:
    settings = state.settings
    secret = settings.webhook_secret.value
    if secret is None:
        raise RequestRefused(
            503,
            "this server has no webhook secret to sign deliveries with: start it with "
            f"--webhook-secret-file PATH or {WEBHOOK_SECRET_ENV}",
        )
    codec = framing_named(state, framing, NAME)
    try:
        subscription = Subscription.from_json(decoded_body(body) or {})
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc
    check_limits(subscription.request, settings)
    url = allowed_callback(subscription.callback_url, settings.webhook_allow)
    gen = start_generation(state, subscription.request)
    sender = state.webhook_sender
    assert isinstance(sender, WebhookSender), "servers.core.make_state gives every server one"
    delivery = Delivery(sender, gen, codec, state.source.model, subscription, secret, url)
    sender.start(delivery)
    answer = {"id": gen.id, "callback_url": subscription.callback_url}
    return json_answer({**answer, "batch_ms": subscription.batch_ms}, status=202)


@router.post(PATH, status_code=202)
async def subscribe(request: Request, framing: str = Query("json")) -> Response:
    body = await read_body(request)
    return whole_response(subscribed(state_of(request), body, framing))


async def _subscribe(call: Call) -> Answer:
    return subscribed(call.state, call_body(call), call.query.get("framing", "json"))


ROUTES = (Route("POST", PATH, _subscribe),)
