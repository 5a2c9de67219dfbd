"""The one loop every push endpoint runs: the framing's start messages, each token as the
generation yields it, the end messages; and, if the reader left before the end, the
generation is abandoned (cancelled, or after a grace period when the transport can resume).
Endpoints only wrap each framed payload in their own delimiting (an SSE event, an NDJSON
line, a WebSocket message)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from servers.generation import Generation
from wire.framing import Framing


class StreamAborted(Exception):
    """The stream cannot end as its framing ends streams: the response is cut short (no
    terminating chunk), the way a naive server's connection drops when its generator fails.
    `raw` has no way to say that the generation failed."""


def response_headers(framing: Framing, transport: str) -> dict[str, str]:
    """What a framing adds to the head of a push response over `transport`: its exact
    Content-Type (where it has one) and its vendor headers."""
    headers = dict(framing.headers)
    exact = framing.media_type(transport, "")
    if exact:
        headers["content-type"] = exact
    return headers


@dataclass(frozen=True, slots=True)
class Framed:
    """One framed payload; `index` is the token's index (None for start and end messages)."""

    index: int | None
    payload: str


async def framed_stream(
    gen: Generation,
    framing: Framing,
    model: str,
    start: int = 0,
    resume_grace_s: float = 0.0,
    resumed: bool = False,
) -> AsyncIterator[Framed]:
    """Start messages (not on a resume), tokens from `start`, end messages. Close it
    (`contextlib.aclosing`): a reader that leaves early is counted out at once."""
    complete = False
    try:
        if not resumed:
            for payload in framing.encode_start(gen.id, model):
                yield Framed(None, payload)
        async with contextlib.aclosing(gen.follow(start)) as tokens:
            async for i, text in tokens:
                yield Framed(i, framing.encode_token(gen.id, model, i, text))
        if gen.error is not None and not framing.boundaries:
            complete = True
            raise StreamAborted(gen.error)
        for payload in framing.encode_end(gen.id, model, len(gen.texts), gen.error):
            yield Framed(None, payload)
        complete = True
    finally:
        if not complete:
            gen.reader_left(resume_grace_s)
