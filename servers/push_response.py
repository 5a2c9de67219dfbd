"""The HTTP response of every push stream (SSE, chunked, chat completions).

Body chunks go to the server's own ASGI `send` (`RAW_SEND`, put in the scope by
`servers.app.TokenwireApp`), not through the `send` wrappers of Starlette's error and
exception middleware: those only watch for the response's start, which still passes
through them, and per token they cost about a tenth of the server's CPU at 1,000 streams
(measured with py-spy; docs/scale.md). The bytes on the wire are the same.

Starlette's `StreamingResponse` never closes its body iterator: a client that disconnects
while a chunk is being sent leaves the generator suspended at its `yield`, finalised only
when the garbage collector gets to it, and the generation it follows runs on for nobody
(measured: about 0.8% of dropped SSE streams). This response closes the iterator as soon
as the response ends, however it ends, and a client that went away is not an error worth
a traceback in the server log.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import anyio
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from servers.exchange import Answer
from servers.responses import whole_response
from servers.streaming import STREAMING_HEADERS, StreamAborted

__all__ = ["RAW_SEND", "STREAMING_HEADERS", "PushResponse", "answer_response"]


RAW_SEND = "tokenwire.raw_send"  # the scope key of the server's own ASGI send


class PushResponse(StreamingResponse):
    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        media_type: str,
        headers: dict[str, str] | None = None,
        streaming_headers: bool = True,
    ) -> None:
        """`streaming_headers` False leaves out `STREAMING_HEADERS`, as a naive server would
        (`ServerSettings.streaming_headers`): a proxy in front may then buffer the stream."""
        base = STREAMING_HEADERS if streaming_headers else {}
        super().__init__(body, media_type=media_type, headers={**base, **(headers or {})})
        self._body = body

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        body = self._raw_send or send
        async for chunk in self._body:
            await body({"type": "http.response.body", "body": chunk, "more_body": True})
        await body({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._raw_send: Send | None = scope.get(RAW_SEND)
        try:
            await super().__call__(scope, receive, send)
        except (ClientDisconnect, OSError):
            pass  # the client left: the generation is told below
        except StreamAborted:
            pass  # returning without the body's end: uvicorn closes the connection
        finally:
            with anyio.CancelScope(shield=True):
                await self._body.aclose()


def answer_response(answer: Answer) -> Response:
    """A neutral `Answer` as the FastAPI stacks send it: a push stream as `PushResponse`
    (its headers already hold the streaming ones where the server sends them)."""
    if answer.chunks is None:
        return whole_response(answer)
    response = PushResponse(
        answer.chunks, answer.media_type or "", answer.headers, streaming_headers=False
    )
    response.status_code = answer.status
    return response
