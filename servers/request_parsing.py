"""Requests as endpoints receive them, parsed into wire types; bad ones refused with 400."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from errors import ProtocolError, RequestRefused
from wire.framing import Framing, get_framing, padded
from wire.messages import GenerationRequest, loads


def parse_generation_request(body: bytes | str | dict[str, Any] | None) -> GenerationRequest:
    try:
        decoded = loads(body) if isinstance(body, bytes | str) and body else body
        return GenerationRequest.from_json(decoded or None)
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc


async def body_generation_request(request: Request) -> GenerationRequest:
    """FastAPI dependency: the JSON body as a validated `GenerationRequest`."""
    return parse_generation_request(await request.body())


def framing_named(name: str, pad_bytes: int = 0) -> Framing:
    try:
        return padded(get_framing(name), pad_bytes)
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc
