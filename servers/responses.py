"""JSON answers: plain ones, and refused requests (`{"error": message}` with a 4xx)."""

from __future__ import annotations

import orjson
from fastapi import Request, Response
from fastapi.responses import JSONResponse

from errors import RequestRefused

OPENAI_PATHS = ("/v1/chat/completions",)


def json_response(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def refused_request_handler(request: Request, exc: Exception) -> JSONResponse:
    """`{"error": message}`; on the OpenAI-compatible endpoint, OpenAI's own error shape."""
    assert isinstance(exc, RequestRefused)
    headers = None if exc.retry_after_s is None else {"Retry-After": str(exc.retry_after_s)}
    if request.url.path in OPENAI_PATHS:
        body: dict[str, object] = {
            "error": {"message": exc.message, "type": "invalid_request_error"}
        }
        return JSONResponse(body, status_code=exc.status, headers=headers)
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
