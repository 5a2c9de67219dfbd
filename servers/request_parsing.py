"""Requests as endpoints receive them, read within the server's limits and parsed into wire
types; anything else is refused with a 4xx JSON error that names the limit or the field."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from errors import ProtocolError, RequestRefused
from servers.exchange import Call
from servers.settings import ServerSettings
from servers.state import ServerState, state_of
from wire.framing import Framing, padded
from wire.messages import GenerationRequest, loads

JSON_MEDIA_TYPE = "application/json"


def refuse_unless_json(content_type: str) -> None:
    """A body must be declared JSON: a cross-site page can send a body without a CORS
    preflight only as text/plain, a form or with no type at all, so such a POST must not
    start a generation (415)."""
    if content_type.partition(";")[0].strip().lower() != JSON_MEDIA_TYPE:
        got = f"got {content_type[:80]!r}" if content_type else "got none"
        raise RequestRefused(
            415, f"a request body must be JSON, sent with Content-Type: {JSON_MEDIA_TYPE} ({got})"
        )


def admit_body(headers: Mapping[str, str], settings: ServerSettings, starts_work: bool) -> None:
    """Before reading a body: refused when it is not declared JSON (415: always when the
    request can start a generation, `starts_work`, empty body or not; otherwise when it is
    not empty) or when its declared length is past `max_body_bytes` (413)."""
    declared = headers.get("content-length", "")
    if starts_work or declared not in ("", "0"):
        refuse_unless_json(headers.get("content-type", ""))
    limit = settings.max_body_bytes
    if declared.isdigit() and int(declared) > limit:
        raise RequestRefused(
            413, f"request body of {declared} bytes exceeds max_body_bytes ({limit})"
        )


async def read_limited(chunks: AsyncIterator[bytes], settings: ServerSettings) -> bytes:
    """A body's chunks, joined: refused past `max_body_bytes` (413) or when they have not
    all arrived within `request_timeout_s` (408). A client that leaves first raises what
    its stack raises."""
    limit = settings.max_body_bytes
    body = bytearray()
    try:
        async with asyncio.timeout(settings.request_timeout_s):
            async for chunk in chunks:
                body += chunk
                if len(body) > limit:
                    raise RequestRefused(413, f"request body exceeds max_body_bytes ({limit})")
    except TimeoutError:
        raise RequestRefused(
            408,
            f"the request body did not arrive within request_timeout_s "
            f"({settings.request_timeout_s:g} s)",
        ) from None
    return bytes(body)


async def drop_body(chunks: AsyncIterator[bytes], settings: ServerSettings) -> None:
    """Read the body of a request refused before it was read, and drop it (within the
    limits of `read_limited`), so that the refusal reaches the client: a server that closes
    the connection while body bytes still arrive (granian, hypercorn) has the kernel reset
    it, and the client's read of the answer then fails. A client that leaves raises what its
    stack raises."""
    with contextlib.suppress(RequestRefused):
        await read_limited(chunks, settings)


async def read_body(request: Request, *, starts_work: bool = True) -> bytes:
    """The whole body, within the limits (`admit_body`, `read_limited`)."""
    settings = state_of(request).settings
    try:
        admit_body(request.headers, settings, starts_work)
    except RequestRefused as refused:
        if refused.status == 415:  # (a 413 is not read: there is too much of it)
            with contextlib.suppress(ClientDisconnect):
                await drop_body(request.stream(), settings)
        raise
    try:
        body = await read_limited(request.stream(), settings)
    except ClientDisconnect:
        raise RequestRefused(400, "the client left before sending its whole body") from None
    if body:
        refuse_unless_json(request.headers.get("content-type", ""))
    return body


def call_body(call: Call, *, starts_work: bool = True) -> bytes:
    """A neutral call's body (read by its stack within the size and time limits), refused
    as `admit_body` refuses."""
    admit_body(call.headers, call.state.settings, starts_work or bool(call.body))
    return call.body


def call_generation_request(call: Call) -> GenerationRequest:
    """The call's JSON body as a validated `GenerationRequest` (`body_generation_request`)."""
    return parse_generation_request(decoded_body(call_body(call)), call.state.settings)


def check_limits(request: GenerationRequest, settings: ServerSettings) -> GenerationRequest:
    if len(request.prompt) > settings.max_prompt_chars:
        raise RequestRefused(
            400,
            f"prompt of {len(request.prompt)} characters exceeds max_prompt_chars "
            f"({settings.max_prompt_chars})",
        )
    if request.max_tokens is not None and request.max_tokens > settings.max_tokens_limit:
        raise RequestRefused(
            400,
            f"max_tokens {request.max_tokens} exceeds max_tokens_limit "
            f"({settings.max_tokens_limit})",
        )
    return request


def decoded_body(body: bytes) -> Any:
    """A request body's JSON value; None for an empty body (the default request). Anything
    but an object is refused (400), `[]`, `null`, `0`, `false` and `""` included."""
    if not body:
        return None
    try:
        decoded = loads(body)
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc
    if not isinstance(decoded, dict):
        raise RequestRefused(400, f"a request body must be a JSON object, got {body[:40]!r}")
    return decoded


def parse_generation_request(
    body: dict[str, Any] | None, settings: ServerSettings
) -> GenerationRequest:
    """A request's fields (a JSON object; None: the default request), validated."""
    try:
        return check_limits(GenerationRequest.from_json(body), settings)
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc


async def body_generation_request(request: Request) -> GenerationRequest:
    """FastAPI dependency: the JSON body as a validated `GenerationRequest` (an empty body
    is the default request, but still needs the JSON Content-Type: it starts work)."""
    body = decoded_body(await read_body(request))
    return parse_generation_request(body, state_of(request).settings)


def framing_named(state: ServerState, name: str, transport: str) -> Framing:
    """The framing called `name`, as it travels over `transport` (400 when it cannot),
    padded as the server's test aid asks."""
    try:
        framing = state.transports.framing_over(name, transport)
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc
    if "no_terminal" in state.settings.faults:  # a failure-lab fault (servers/faults.py)
        framing = dataclasses.replace(framing, encode_end=lambda *_: [])
    return padded(framing, state.settings.inject_pad_bytes)
