"""The one loop every push endpoint runs: the framing's start messages, each token as the
generation yields it (in batches: what is ready when the reader runs), the end messages;
and, if the reader left before the end, the generation is abandoned (cancelled, or after a
grace period when the transport can resume). Endpoints only wrap each framed payload in
their own delimiting (an SSE event, an NDJSON line, a WebSocket message).

One loop per response awaits the generation directly, in place of the three async
generators that were stacked per token before (the profiles are in docs/scale.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from servers.exchange import Answer
from servers.generation import Generation
from servers.settings import ServerSettings
from wire.framing import Framing

# What makes a push stream stream through proxies and caches (nginx honours the second).
STREAMING_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class StreamAborted(Exception):
    """The stream cannot end as its framing ends streams: the response is cut short (no
    terminating chunk), the way a naive server's connection drops when its generator fails.
    `raw` has no way to say that the generation failed."""


def response_headers(framing: Framing, carriage: str) -> dict[str, str]:
    """What a framing adds to the head of a push response on `carriage`: its exact
    Content-Type (where it has one) and its vendor headers."""
    headers = dict(framing.headers)
    exact = framing.media_type(carriage, "")
    if exact:
        headers["content-type"] = exact
    return headers


def push_answer(
    chunks: AsyncGenerator[bytes, None],
    media_type: str,
    settings: ServerSettings,
    headers: dict[str, str] | None = None,
) -> Answer:
    """A push stream's answer: `STREAMING_HEADERS` unless the server is told to leave them
    out, as a naive server would (`ServerSettings.streaming_headers`: a proxy in front may
    then buffer the stream), and the framing's headers."""
    base = STREAMING_HEADERS if settings.streaming_headers else {}
    return Answer(200, b"", media_type, {**base, **(headers or {})}, chunks)


@dataclass(frozen=True, slots=True)
class Framed:
    """One framed payload; `index` is the token's index (None for start and end messages),
    `start` whether it is one of the framing's start messages."""

    index: int | None
    payload: str
    start: bool = False


async def framed_batches(
    gen: Generation,
    framing: Framing,
    model: str,
    start: int = 0,
    resume_grace_s: float = 0.0,
    resumed: bool = False,
    heartbeat_s: float = 0.0,
) -> AsyncGenerator[list[Framed], None]:
    """Start messages (not on a resume), tokens from `start`, end messages, in batches:
    everything that is ready when the reader gets to run, for one wake-up (one token per
    batch while the server keeps up; more when it fell behind). HTTP endpoints still send
    each message as its own body chunk, so the bytes on the wire (HTTP chunk framing
    included) never depend on timing. The first batch holds all the start messages. Close
    it (`contextlib.aclosing`): a reader that leaves early is counted out at once.

    With `heartbeat_s`, a wait that long with nothing to send yields an empty batch: the
    endpoint's cue to send its keep-alive bytes (`ServerSettings.heartbeat_s`)."""
    complete = False
    try:
        starting = [] if resumed else framing.encode_start(gen.id, model)
        batch = [Framed(None, p, start=True) for p in starting]
        i = start
        texts = gen.texts
        encode = framing.encode_token
        with gen.reading():
            while True:
                ready = len(texts)
                if i < ready:
                    batch += [
                        Framed(k, encode(gen.id, model, k, texts[k])) for k in range(i, ready)
                    ]
                    i = ready
                if gen.done and i >= len(texts):
                    break
                if batch:
                    yield batch
                    batch = []
                    continue  # more may have come while the batch was sent
                if heartbeat_s <= 0:
                    await gen.changed()
                    continue
                waiter = gen.changed()
                done, _ = await asyncio.wait((waiter,), timeout=heartbeat_s)
                if not done:
                    waiter.cancel()
                    yield []  # nothing to send for heartbeat_s
        if gen.error is not None and not framing.boundaries:
            if batch:
                yield batch
            complete = True
            raise StreamAborted(gen.error)
        ending = framing.end(gen.id, model, i, gen.error, gen.request.tool_call())
        batch += [Framed(None, p) for p in ending]
        yield batch
        complete = True
    finally:
        if not complete:
            gen.reader_left(resume_grace_s)
