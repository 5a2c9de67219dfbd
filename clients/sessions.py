"""A conversation's WebSocket, kept open from one turn to the next (as OpenAI's Responses
API WebSocket mode keeps one connection for a whole agent loop), and charged turn by turn.

The asyncio driver keeps one `WSSession` per conversation in flight. Each turn's bytes are
the growth of the connection's TCP_INFO counters since the previous turn was charged (read
from a duplicate descriptor, so they stay readable after the connection closed); the
upgrade and its connection are charged to the turn that opened it.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clients import ws_io
from clients.interface import StreamResult
from clients.wirebytes import connection_bytes

if TYPE_CHECKING:  # the asyncio driver opens it; this module only closes it
    from websockets.asyncio.client import ClientConnection


@dataclass
class WSSession:
    """One open WebSocket of a conversation: the lean client's (`lean`) or the library's
    (`library`, with `probe`, its duplicate descriptor)."""

    lean: ws_io.WSConnection | None = None
    library: ClientConnection | None = None
    probe: socket.socket | None = None
    charged: tuple[int, int] = (0, 0)

    @property
    def usable(self) -> bool:
        """Still open, as far as the client knows (the server may close it between turns
        after its `idle_timeout_s`)."""
        if self.lean is not None:
            return not self.lean.closed.done() and not self.lean.close_received
        return self.library is not None and self.library.close_code is None

    def charge(self, result: StreamResult) -> None:
        """The connection's bytes since the last turn was charged, to `result`."""
        sock = self.lean.sock if self.lean is not None else self.probe
        if sock is None or sock.fileno() == -1:
            return
        sent, received = connection_bytes(sock)
        result.add_bytes((sent - self.charged[0], received - self.charged[1]))
        self.charged = (sent, received)

    async def close(self, result: StreamResult) -> None:
        """Close the connection (its closing handshake), charge what is left to `result`."""
        if self.lean is not None:
            lean, self.lean = self.lean, None
            whole = StreamResult(result.transport, "", 0)  # the connection's whole-life bytes
            await ws_io.close_and_charge(lean, whole)
            sent, received = whole.bytes_sent, whole.bytes_received
            result.add_bytes((sent - self.charged[0], received - self.charged[1]))
            return
        if self.library is not None:
            with contextlib.suppress(Exception):  # a connection already gone closes as it is
                await self.library.close()
                await self.library.wait_closed()
        self.charge(result)
        if self.probe is not None:
            self.probe.close()
            self.probe = None
