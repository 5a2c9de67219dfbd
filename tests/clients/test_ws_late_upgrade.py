"""A WebSocket upgrade that arrives after the opener gave up (its connect timeout ran out,
as when a thread-per-request server makes the handshake wait for a thread) closes the
connection instead of failing inside the event loop."""

from __future__ import annotations

import asyncio
import base64

from clients.ws_io import WSConnection, accept_key


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        return None


async def test_an_upgrade_after_the_opener_gave_up_aborts_the_connection() -> None:
    key = base64.b64encode(b"0123456789abcdef").decode()
    conn = WSConnection(key)
    transport = Transport()
    conn.transport = transport
    conn.upgraded.cancel()  # what asyncio.timeout does to the opener's wait
    answer = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
    )
    conn.data_received(answer.encode())
    assert transport.aborted
    assert conn.upgraded.cancelled()
