"""The HTTP response of every push stream (SSE, chunked, chat completions) on the FastAPI
stacks: Starlette's `StreamingResponse`, as FastAPI users stream, its chunks through the
app's middleware like any app's (the lean path is the bare ASGI stack, asgi@uvicorn).

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

__all__ = ["STREAMING_HEADERS", "PushResponse", "answer_response"]


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
