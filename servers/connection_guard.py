"""A uvicorn HTTP protocol that closes connections which never send a complete request head.

uvicorn times out idle keep-alive connections between requests, but not a connection that
sends nothing, or only part of a request head (a slow or hostile client holding sockets
open). This subclass of uvicorn's own httptools protocol starts a timer when a connection
opens and whenever a new request begins, and closes the connection if the head is not
complete when it fires. A body that never completes is bounded by the endpoints instead
(`servers.request_parsing.read_body`).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def guarded_protocol(head_timeout_s: float) -> type[HttpToolsProtocol]:
    """The protocol class to pass as uvicorn's `http=`, with this head timeout."""

    class HeadTimeoutProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(head_timeout_s, self._head_overdue)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_overdue(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeadTimeoutProtocol
