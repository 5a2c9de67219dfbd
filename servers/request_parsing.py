"""Requests as endpoints receive them, read within the server's limits and parsed into wire
types; anything else is refused with a 4xx JSON error that names the limit or the field."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from errors import ProtocolError, RequestRefused
from servers.settings import ServerSettings
from servers.state import state_of
from wire.framing import Framing, get_framing, padded
from wire.messages import GenerationRequest, loads

JSON_MEDIA_TYPE = "application/json"


def refuse_unless_json(request: Request) -> None:
    """A body must be declared JSON: a cross-site page can send a body without a CORS
    preflight only as text/plain, a form or with no type at all, so such a POST must not
    start a generation (415)."""
    content_type = request.headers.get("content-type", "")
    if content_type.partition(";")[0].strip().lower() != JSON_MEDIA_TYPE:
        got = f"got {content_type[:80]!r}" if content_type else "got none"
        raise RequestRefused(
            415, f"a request body must be JSON, sent with Content-Type: {JSON_MEDIA_TYPE} ({got})"
        )


async def read_body(request: Request) -> bytes:
    """The whole body, refused past `max_body_bytes` (413, before reading it when the
    Content-Length says so), when it does not arrive within `request_timeout_s` (408), or
    when it is not empty and not declared `application/json` (415)."""
    settings = state_of(request).settings
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared not in ("", "0"):
        refuse_unless_json(request)
    if declared.isdigit() and int(declared) > limit:
        raise RequestRefused(
            413, f"request body of {declared} bytes exceeds max_body_bytes ({limit})"
        )
    body = bytearray()
    try:
        async with asyncio.timeout(settings.request_timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise RequestRefused(413, f"request body exceeds max_body_bytes ({limit})")
    except TimeoutError:
        raise RequestRefused(
            408,
            f"the request body did not arrive within request_timeout_s "
            f"({settings.request_timeout_s:g} s)",
        ) from None
    except ClientDisconnect:
        raise RequestRefused(400, "the client left before sending its whole body") from None
    if body:
        refuse_unless_json(request)
    return bytes(body)


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


def parse_generation_request(
    body: bytes | str | dict[str, Any] | None, settings: ServerSettings
) -> GenerationRequest:
    try:
        decoded = loads(body) if isinstance(body, bytes | str) and body else body
        return check_limits(GenerationRequest.from_json(decoded or None), settings)
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc


async def body_generation_request(request: Request) -> GenerationRequest:
    """FastAPI dependency: the JSON body as a validated `GenerationRequest`."""
    return parse_generation_request(await read_body(request), state_of(request).settings)


async def optional_body_generation_request(request: Request) -> GenerationRequest | None:
    """The same, but None for an empty body (a resume needs none)."""
    body = await read_body(request)
    return parse_generation_request(body, state_of(request).settings) if body else None


def framing_named(name: str, pad_bytes: int = 0, transport: str | None = None) -> Framing:
    """The framing called `name`, as it travels over `transport` (400 when it cannot)."""
    try:
        framing = get_framing(name)
        return padded(framing if transport is None else framing.over(transport), pad_bytes)
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc
