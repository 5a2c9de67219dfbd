"""Blocking clients of the five transports, for locust (gevent) and plain threads.

The same wire code and the same `clients.base.StreamResult` as the async clients: each
transport's I/O-free description (`HTTPStream`, `Polling`, the WebSocket helpers), the body
decoding, the error mapping and the byte metering are shared; only the I/O loop differs.
HTTP goes through httpx's sync `Client` (`iter_raw`, so every network read is handed over as
it arrives, never buffered to the end), WebSocket through websockets' sync client. Under
gevent's monkey patching both cooperate: a greenlet blocked on a read lets the others run,
and the per-read stamp (`time.perf_counter_ns()`) is taken as the read returns.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from typing import Protocol

import httpx
from websockets.sync.client import connect

from clients.base import ClientSettings, StreamResult, failures_recorded
from clients.chunked import CHUNKED_STREAM
from clients.http import (
    BodyReader,
    HTTPCall,
    HTTPStream,
    charge_bytes,
    count_exchange,
    http_client_options,
    mapped_errors,
    require_end,
    status_failure,
)
from clients.long_poll import LONG_POLL
from clients.polling import (
    MAX_POLLS,
    Polling,
    create_call,
    never_ended,
    poll_call,
    start,
    take_batch,
)
from clients.short_poll import SHORT_POLL
from clients.sse import SSE_STREAM
from clients.websocket import (
    CONNECT_OPTIONS,
    charge_probe,
    closed_early,
    first_message,
    mapped_ws_errors,
    take_message,
    upgrade_head_bytes,
    ws_url,
)
from clients.wirebytes import ByteMeter
from wire.framing import Framing, get_framing
from wire.messages import GenerationRequest, loads


def keep_trio_out_under_gevent() -> None:
    """httpcore imports trio (lazily, with the first `httpx.Client`) when it is installed, and
    trio's import fails under gevent's monkey-patched `select` (it needs `select.epoll`),
    which would break every httpx client. These clients never use trio: under gevent, make
    `import trio` fail cleanly instead, so httpcore leaves it out."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("select") and "trio" not in sys.modules:
        sys.modules["trio"] = None  # type: ignore[assignment]


keep_trio_out_under_gevent()


class SyncStreamClient(Protocol):
    """The blocking twin of `clients.base.StreamClient`."""

    transport: str

    def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        """Run one stream to its end. Transport failures are recorded in `StreamResult.error`;
        anything else is a bug and propagates."""
        ...

    def close(self) -> None: ...


def check_status(response: httpx.Response, expected: int = 200) -> None:
    if response.status_code != expected:
        raise status_failure(response, response.read())


class SyncHTTPStreamingClient:
    """One streamed HTTP response per stream (SSE, chunked), over one pooled `httpx.Client`."""

    def __init__(self, settings: ClientSettings, kind: HTTPStream) -> None:
        self.settings = settings
        self.kind = kind
        self.transport = kind.transport
        self.framing: Framing = get_framing(settings.framing)
        self.http = httpx.Client(**http_client_options(settings))
        self.meter = ByteMeter()

    def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        result = StreamResult.start(self.transport, request, scheduled_ns)
        with failures_recorded(result), mapped_errors():
            self._read(request, result)
        return result

    def _read(self, request: GenerationRequest, result: StreamResult) -> None:
        call = self.kind.call(self.framing, request)
        with self.http.stream(call.method, call.url, **call.kwargs()) as response:
            count_exchange(result, response)
            try:
                check_status(response, call.expected_status)
                body = BodyReader(
                    self.kind, self.framing, result, response.headers.get("content-type", "")
                )
                for raw in response.iter_raw():
                    body.feed(raw, time.perf_counter_ns())
                body.close()
            finally:
                charge_bytes(self.meter, result, response)
        require_end(result)

    def close(self) -> None:
        self.http.close()


class SyncPollingClient:
    """Create the stream, then poll it by offset (short or long polling, per `kind`)."""

    def __init__(self, settings: ClientSettings, kind: Polling) -> None:
        self.settings = settings
        self.kind = kind
        self.transport = kind.transport
        self.http = httpx.Client(**http_client_options(settings))
        self.meter = ByteMeter()

    def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        result = StreamResult.start(self.transport, request, scheduled_ns)
        with failures_recorded(result), mapped_errors():
            self._run(request, result)
        return result

    def _send(self, result: StreamResult, call: HTTPCall) -> object:
        response = self.http.request(call.method, call.url, **call.kwargs())
        count_exchange(result, response)
        charge_bytes(self.meter, result, response)
        check_status(response, call.expected_status)
        return loads(response.content)

    def _run(self, request: GenerationRequest, result: StreamResult) -> None:
        stream_id = start(result, self._send(result, create_call(request)))
        started = time.perf_counter_ns()
        offset = 0
        for poll_number in range(MAX_POLLS):
            delay = self.kind.delay_s(self.settings, poll_number, started)
            if delay > 0:
                time.sleep(delay)
            body = self._send(result, poll_call(self.kind, self.settings, stream_id, offset))
            offset, done = take_batch(result, body, offset, time.perf_counter_ns())
            if done:
                return
        raise never_ended()

    def close(self) -> None:
        self.http.close()


class SyncWebSocketClient:
    """One WebSocket connection per stream, through websockets' sync client."""

    transport = "websocket"

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.framing = get_framing(settings.framing)
        self.url = ws_url(settings)

    def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        result = StreamResult.start(self.transport, request, scheduled_ns)
        with failures_recorded(result):
            self._run(request, result)
        return result

    def _run(self, request: GenerationRequest, result: StreamResult) -> None:
        probe: socket.socket | None = None
        try:
            with mapped_ws_errors(), connect(self.url, **CONNECT_OPTIONS) as ws:
                result.requests += 1  # the upgrade request
                result.header_bytes += upgrade_head_bytes(ws)
                probe = ws.socket.dup()
                ws.send(first_message(self.framing, request))
                for message in ws:
                    if take_message(result, self.framing, message, time.perf_counter_ns()):
                        return
                raise closed_early()
        finally:
            charge_probe(result, probe)

    def close(self) -> None:
        return None


SYNC_CLIENTS: dict[str, Callable[[ClientSettings], SyncStreamClient]] = {
    "short_poll": lambda settings: SyncPollingClient(settings, SHORT_POLL),
    "long_poll": lambda settings: SyncPollingClient(settings, LONG_POLL),
    "sse": lambda settings: SyncHTTPStreamingClient(settings, SSE_STREAM),
    "chunked": lambda settings: SyncHTTPStreamingClient(settings, CHUNKED_STREAM),
    "websocket": SyncWebSocketClient,
}
