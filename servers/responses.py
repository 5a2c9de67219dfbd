"""JSON answers: plain ones, and refused requests (`{"error": message}` with a 4xx)."""

from __future__ import annotations

import orjson
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from errors import RequestRefused

OPENAI_PATHS = ("/v1/chat/completions",)
UNREAD_BODY = (408, 413)  # refusals that leave part of the request body unread


def json_response(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def refusal(path: str, exc: RequestRefused, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"error": message}`; on the OpenAI-compatible endpoint, OpenAI's own error shape."""
    headers = dict(headers or {})
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    if exc.status in UNREAD_BODY:  # the rest of the body would follow: end the connection
        headers["Connection"] = "close"
    if path in OPENAI_PATHS:
        body: dict[str, object] = {
            "error": {"message": exc.message, "type": "invalid_request_error"}
        }
        return JSONResponse(body, status_code=exc.status, headers=headers)
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


async def refused_request_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestRefused)
    return refusal(request.url.path, exc)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """The router's own refusals (unknown path 404, method not allowed 405) in the same
    `{"error": ...}` shape as every other refusal."""
    assert isinstance(exc, StarletteHTTPException)
    refused = RequestRefused(exc.status_code, str(exc.detail))
    return refusal(request.url.path, refused, dict(exc.headers or {}))
