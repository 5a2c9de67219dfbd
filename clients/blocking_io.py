"""The blocking driver, for locust (gevent) and plain threads: runs any transport's exchange
logic (`clients.exchange`) with httpx's sync `Client` and websockets' sync client.

The same logic, wire code and `StreamResult` as the asyncio driver; only the I/O differs.
Bodies are read with `iter_raw`, so every network read is handed over as it arrives, never
buffered to the end. Under gevent's monkey patching both libraries cooperate: a greenlet
blocked on a read lets the others run, and the per-read stamp is taken as the read returns.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Protocol

import httpx
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

from clients import exchange as effects
from clients import httpx_io, websockets_io
from clients.callbacks_blocking import BlockingMailbox, BlockingReceiver
from clients.callbacks_http import count_callback
from clients.interface import ClientSettings, StreamResult, failures_recorded
from errors import UsageError
from wire.messages import GenerationRequest


def keep_trio_out_under_gevent() -> None:
    """httpcore imports trio (lazily, with the first `httpx.Client`) when it is installed, and
    trio's import fails under gevent's monkey-patched `select` (it needs `select.epoll`),
    which would break every httpx client. These clients never use trio: under gevent, make
    `import trio` fail cleanly instead, so httpcore leaves it out."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("select") and "trio" not in sys.modules:
        sys.modules["trio"] = None  # type: ignore[assignment]  # None: `import trio` fails


keep_trio_out_under_gevent()


class BlockingStreamClient(Protocol):
    """The blocking twin of `clients.interface.StreamClient`."""

    transport: str

    def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult: ...
    def close(self) -> None: ...


class BlockingClient(httpx_io.PooledClient[httpx.Client]):
    """Any transport's blocking client: its exchange logic over one pooled `httpx.Client`."""

    def __init__(
        self, transport: str, logic: effects.ExchangeLogic, settings: ClientSettings
    ) -> None:
        super().__init__(transport, logic, settings, httpx.Client)
        self._receiver: BlockingReceiver | None = None
        self._receiver_lock = threading.Lock()

    def callback_receiver(self) -> BlockingReceiver:
        """This client's callback receiver, started on first use."""
        with self._receiver_lock:
            if self._receiver is None:
                self._receiver = BlockingReceiver()
            return self._receiver

    def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        """Run one stream to its end. Transport failures are recorded in `StreamResult.error`;
        anything else is a bug and propagates."""
        result = StreamResult.start(self.transport, request, scheduled_ns)
        with failures_recorded(result), BlockingIO(self, result) as io:
            io.run(self.logic(self.settings, request, result))
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._receiver is not None:
            self._receiver.close()


class BlockingIO(contextlib.ExitStack):
    """Performs one stream's effects; what it opened is closed (and charged) at exit."""

    def __init__(self, client: BlockingClient, result: StreamResult) -> None:
        super().__init__()
        self.client = client
        self.result = result
        self.response: httpx.Response | None = None  # the open streamed response
        self.reads: Iterator[bytes] | None = None
        self.ws: ClientConnection | None = None
        self.probes: list[socket.socket] = []  # one per WebSocket connection
        self.mailbox: BlockingMailbox | None = None  # this stream's callbacks

    def run(self, exchange: effects.Exchange) -> None:
        steps = effects.Steps(exchange)
        with contextlib.closing(steps):
            reply: object = None
            while (effect := steps.send(reply)) is not None:
                reply = getattr(self, effects.HANDLERS[type(effect)])(effect)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        with httpx_io.mapped_errors(), websockets_io.mapped_ws_errors():
            return super().__exit__(exc_type, exc, traceback)

    def fetch(self, effect: effects.Fetch) -> effects.Reply:
        with httpx_io.mapped_errors():
            response = self.client.http.request(
                effect.call.method, effect.call.url, **effect.call.kwargs()
            )
        return httpx_io.complete_exchange(
            self.client.meter, self.result, response, time.perf_counter_ns()
        )

    def open_stream(self, effect: effects.OpenStream) -> effects.Reply:
        call = effect.call
        with httpx_io.mapped_errors():
            response = self.enter_context(
                self.client.http.stream(call.method, call.url, **call.kwargs())
            )
            self.callback(httpx_io.charge_bytes, self.client.meter, self.result, response)
            httpx_io.count_exchange(self.result, response, self.client.meter)
            body = response.read() if httpx_io.unexpected(response, call) else b""
        self.response, self.reads = response, response.iter_raw()
        return httpx_io.reply_of(response, body, time.perf_counter_ns())

    def read_body(self, effect: effects.ReadBody) -> effects.Arrival | None:
        assert self.reads is not None, "ReadBody before OpenStream"
        with httpx_io.mapped_errors():
            data = next(self.reads, None)
        return None if data is None else effects.Arrival(data, time.perf_counter_ns())

    def sleep(self, effect: effects.Sleep) -> None:
        time.sleep(effect.seconds)

    def open_websocket(self, effect: effects.OpenWebSocket) -> None:
        if not self.probes:  # charged after every close handshake (the stack unwinds last-in first)
            self.callback(websockets_io.charge_probes, self.result, self.probes)
        with websockets_io.mapped_ws_errors():
            self.ws = self.enter_context(
                connect(
                    websockets_io.ws_url(self.client.settings.base_url, effect.path),
                    **websockets_io.connect_options(self.client.settings),
                )
            )
        self.probes.append(websockets_io.count_upgrade(self.result, self.ws, self.ws.socket))

    def open_webtransport(self, effect: effects.OpenWebTransport) -> None:
        raise UsageError(
            "webtransport runs on the asyncio driver only (bench.py run): the blocking "
            "clients (locust) have no QUIC client"
        )

    def send_text(self, effect: effects.SendText) -> None:
        assert self.ws is not None, "SendText before OpenWebSocket"
        with websockets_io.mapped_ws_errors():
            self.ws.send(effect.text)

    def receive(self, effect: effects.ReceiveMessage) -> effects.Arrival | None:
        assert self.ws is not None, "ReceiveMessage before OpenWebSocket"
        with websockets_io.mapped_ws_errors(), contextlib.suppress(ConnectionClosedOK):
            return effects.Arrival(self.ws.recv(), time.perf_counter_ns())
        return None

    def drop(self, effect: effects.Drop) -> int:
        dropped_ns = time.perf_counter_ns()
        if self.ws is not None:
            self.ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the connection vanishes
            self.ws = None
        if self.response is not None:
            httpx_io.charge_bytes(self.client.meter, self.result, self.response)
            self.response.close()  # unread body: httpx closes the connection
            self.response = self.reads = None
        return dropped_ns

    def listen_for_callbacks(self, effect: effects.ListenForCallbacks) -> str:
        self.mailbox = self.client.callback_receiver().open()
        self.callback(self.mailbox.close)  # later callbacks: 410 Gone
        return self.mailbox.url

    def receive_callback(self, effect: effects.ReceiveCallback) -> effects.Callback | None:
        assert self.mailbox is not None, "ReceiveCallback before ListenForCallbacks"
        inbound = self.mailbox.next(effect.timeout_s)
        if inbound is None:
            return None
        count_callback(self.result, inbound)
        return inbound.callback

    def answer_callback(self, effect: effects.AnswerCallback) -> None:
        assert self.mailbox is not None, "AnswerCallback before ListenForCallbacks"
        self.result.header_bytes += self.mailbox.answer(effect.status, effect.body)
