"""Answers as Starlette responses, for the FastAPI stacks: plain JSON ones, refused requests
(`{"error": message}` with a 4xx, shaped by `servers.exchange.refusal_answer`) and the
neutral routes' `Answer`s."""

from __future__ import annotations

import orjson
from fastapi import Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from errors import RequestRefused
from servers.exchange import Answer, refusal_answer


def json_response(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def whole_response(answer: Answer) -> Response:
    """A whole-body answer (`servers.push_response.answer_response` takes streams too)."""
    return Response(
        answer.body, status_code=answer.status, headers=answer.headers, media_type=answer.media_type
    )


def refusal(path: str, exc: RequestRefused, headers: dict[str, str] | None = None) -> Response:
    """`{"error": message}`; on the OpenAI-compatible endpoint, OpenAI's own error shape."""
    return whole_response(refusal_answer(path, exc, headers))


async def refused_request_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestRefused)
    return refusal(request.url.path, exc)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """The router's own refusals (unknown path 404, method not allowed 405) in the same
    `{"error": ...}` shape as every other refusal."""
    assert isinstance(exc, StarletteHTTPException)
    refused = RequestRefused(exc.status_code, str(exc.detail))
    return refusal(request.url.path, refused, dict(exc.headers or {}))
