"""The stack-neutral shape of an endpoint: a `Call` in, an `Answer` out.

Every transport declares its endpoints once as `Route`s over these types (the registry names
them: `Transport.routes`); each server stack (`stacks.py`) maps its own request, response
and WebSocket API onto them in one adapter module (`servers/stacks/`). FastAPI stacks mount
the transports' FastAPI routers instead, which call the same functions. What a route does
(generations, resume, limits, framing) never depends on the stack; how the answer's bytes
are handed to the server does, and that is the stack's cost.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from errors import RequestRefused
from servers.state import ServerState

JSON = "application/json"
OPENAI_PATHS = ("/v1/chat/completions", "/v1/responses")
UNREAD_BODY = (408, 413)  # refusals that leave part of the request body unread


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request as a route sees it: the body read whole (within `max_body_bytes`
    and `request_timeout_s`, by the stack), header names in lower case (first value)."""

    state: ServerState  # as the caller's principal sees it
    method: str
    path: str
    params: Mapping[str, str]  # the path's parameters (`{stream_id}`)
    query: Mapping[str, str]  # the first value of each
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(slots=True)
class Answer:
    """A whole body (`body`), or a push stream (`chunks`: each one body chunk, handed to the
    server's write as it comes; close it however the response ends)."""

    status: int = 200
    body: bytes = b""
    media_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)
    chunks: AsyncGenerator[bytes, None] | None = None

    def head(self) -> list[tuple[str, str]]:
        """The response's headers, Content-Type first where there is one."""
        given = {k.lower() for k in self.headers}
        typed = self.media_type is not None and "content-type" not in given
        media = [("content-type", self.media_type or "")] if typed else []
        return media + list(self.headers.items())


@dataclass(frozen=True, slots=True)
class Message:
    """What a WebSocket peer received: a text message, a binary one (neither set), or the
    client's leaving (`closed`: its close code; 1006 when the connection just dropped)."""

    text: str | None = None
    closed: int | None = None


class SocketPeer(Protocol):
    """A stack's WebSocket, accepted, as the neutral WebSocket endpoint uses it."""

    async def receive(self) -> Message: ...

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int = 1000) -> None: ...


Handler = Callable[[Call], Awaitable[Answer]]
SocketHandler = Callable[[ServerState, SocketPeer], Awaitable[None]]
WEBSOCKET = "WEBSOCKET"  # a route's method when it is a WebSocket endpoint


@dataclass(frozen=True, slots=True)
class Route:
    method: str  # GET, POST, HEAD or WEBSOCKET
    path: str  # with `{name}` parameters, as Starlette, aiohttp and this module match them
    handler: Handler | None = None
    socket: SocketHandler | None = None  # for WEBSOCKET

    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path) + "$")


def json_answer(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, orjson.dumps(body), JSON, dict(headers or {}))


def refusal_answer(path: str, exc: RequestRefused, headers: dict[str, str] | None = None) -> Answer:
    """`{"error": message}`; on the OpenAI-compatible endpoint, OpenAI's own error shape.
    Retry-After when the refusal gives one; `Connection: close` when the body is unread."""
    extra = dict(headers or {})
    if exc.retry_after_s is not None:
        extra["Retry-After"] = str(exc.retry_after_s)
    if exc.status in UNREAD_BODY:  # the rest of the body would follow: end the connection
        extra["Connection"] = "close"
    body: object = {"error": exc.message}
    if path in OPENAI_PATHS:
        body = {"error": {"message": exc.message, "type": "invalid_request_error"}}
    return json_answer(body, exc.status, extra)


async def answered(handler: Handler, call: Call) -> Answer:
    """The handler's answer, or its refusal's."""
    try:
        return await handler(call)
    except RequestRefused as exc:
        return refusal_answer(call.path, exc)


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Routes by method and path, for a stack without a router of its own (bare ASGI)."""

    routes: tuple[Route, ...]
    exact: Mapping[tuple[str, str], Route]
    patterned: tuple[tuple[Route, re.Pattern[str]], ...]

    @classmethod
    def of(cls, routes: Iterable[Route]) -> RouteTable:
        routes = tuple(routes)
        exact = {(r.method, r.path): r for r in routes if "{" not in r.path}
        patterned = tuple((r, r.pattern()) for r in routes if "{" in r.path)
        return cls(routes, exact, patterned)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | RequestRefused:
        """The route and its path parameters; the refusal (404, 405) when none matches."""
        route = self.exact.get((method, path))
        if route is not None:
            return route, {}
        allowed = [r.method for r in self.routes if r.path == path]
        for candidate, pattern in self.patterned:
            found = pattern.match(path)
            if found is None:
                continue
            if candidate.method == method:
                return candidate, found.groupdict()
            allowed.append(candidate.method)
        if allowed:
            return RequestRefused(405, "Method Not Allowed")
        return RequestRefused(404, "Not Found")


# region query parameters: the neutral stacks' checks, worded as FastAPI's (422)
def query_int(
    call: Call, name: str, default: int | None = None, ge: int | None = None, le: int | None = None
) -> int | None:
    text = call.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise RequestRefused(422, f"query.{name}: Input should be a valid integer") from None
    if ge is not None and value < ge:
        raise RequestRefused(422, f"query.{name}: Input should be greater than or equal to {ge}")
    if le is not None and value > le:
        raise RequestRefused(422, f"query.{name}: Input should be less than or equal to {le}")
    return value


def query_float(call: Call, name: str, default: float = 0.0, ge: float | None = None) -> float:
    text = call.query.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise RequestRefused(422, f"query.{name}: Input should be a valid number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise RequestRefused(422, f"query.{name}: Input should be a finite number")
    if ge is not None and value < ge:
        raise RequestRefused(422, f"query.{name}: Input should be greater than or equal to {ge}")
    return value


TRUE = frozenset({"1", "true", "on", "yes"})
FALSE = frozenset({"0", "false", "off", "no"})


def query_bool(call: Call, name: str, default: bool = False) -> bool:
    text = call.query.get(name)
    if text is None:
        return default
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise RequestRefused(422, f"query.{name}: Input should be a valid boolean")


# endregion
