"""A uvicorn HTTP protocol that closes connections which never send a complete request.

uvicorn times out idle keep-alive connections between requests, but not a connection that
sends nothing, only part of a request head, or a body that never ends (a slow or hostile
client holding sockets open; uvicorn's keep-alive timer restarts at every byte). This
subclass of uvicorn's own httptools protocol starts a timer when a connection opens and
whenever a new request begins, and closes the connection if the request (head and body) is
not complete when it fires. Endpoints that read a body answer 408 first
(`servers.request_parsing.read_body`).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BODY_ANSWER_GRACE_S = 1.0  # after the request timeout, before a body-less connection closes


def guarded_protocol(request_timeout_s: float) -> type[HttpToolsProtocol]:
    """The protocol class to pass as uvicorn's `http=`, with this request timeout."""

    class RequestTimeoutProtocol(HttpToolsProtocol):
        _request_timer: asyncio.TimerHandle | None = None
        _head_done = False  # the app has the request: it may still answer (408) in time

        def _arm(self, delay_s: float = request_timeout_s) -> None:
            if self._request_timer is None:
                self._request_timer = self.loop.call_later(delay_s, self._request_overdue)

        def _disarm(self) -> None:
            if self._request_timer is not None:
                self._request_timer.cancel()
                self._request_timer = None

        def _request_overdue(self) -> None:
            self._request_timer = None
            if self._head_done:  # the endpoint times the body too: let its 408 go out first
                self._head_done = False
                self._arm(BODY_ANSWER_GRACE_S)
            elif not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_done = False
            self._arm()

        def on_headers_complete(self) -> None:
            self._head_done = True
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return RequestTimeoutProtocol
