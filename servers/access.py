"""Who may call the server, and from which pages: bearer tokens, principals, origins.

`install(app, settings)` adds two pure ASGI middlewares in front of every endpoint:

- `AccessGuard`. With tokens set (`ServerSettings.tokens`), every HTTP request but
  `/healthz` needs `Authorization: Bearer <token>`, else 401 `{"error": ...}` with
  `WWW-Authenticate: Bearer`. A WebSocket upgrade takes the token from the same header or,
  because browsers cannot set headers on a WebSocket, from a subprotocol
  `tokenwire.bearer.<token>`; the server then accepts the subprotocol `tokenwire` when the
  client offered it too, else echoes the bearer one (a client that offers subprotocols
  must get one back). An upgrade without a valid token is refused with 401 before it is
  accepted. Tokens are compared by their SHA-256 digests in constant time, and the digest
  (hex) is the request's principal (`principal_of`): the server records it as a stream's
  owner, never the token. Independently of tokens, a WebSocket upgrade whose `Origin` is
  neither the server's own (`Host`) nor on `ServerSettings.cors_origins` is refused with
  403: browsers do not apply CORS to WebSockets.
- Starlette's `CORSMiddleware`, outermost, only when origins are listed: it answers
  preflights (a preflight carries no token, so it must come before the guard) and adds the
  CORS headers to every answer to a listed origin, the guard's 401 included.

Cross-site request forgery: a page can POST to the server without a preflight only with a
"simple" content type. Endpoints accept a body only as `application/json` (415 otherwise,
`servers.request_parsing.read_body`), so such a POST cannot start a generation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errors import RequestRefused
from servers.responses import refusal
from servers.settings import ServerSettings, normal_origin

SUBPROTOCOL = "tokenwire"
BEARER_SUBPROTOCOL_PREFIX = "tokenwire.bearer."
PRINCIPAL_KEY = "tokenwire.principal"  # in the ASGI scope: the caller's principal
OPEN_PATHS = frozenset({"/healthz"})
HTTP_RESPONSE_EXTENSION = "websocket.http.response"

CORS_METHODS = ("GET", "POST")
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "Last-Event-ID", "x-tokenwire-stream-id")
CORS_EXPOSED_HEADERS = ("Retry-After", "WWW-Authenticate")


def principal_of(conn: HTTPConnection) -> str | None:
    """The caller's principal (a token's SHA-256, hex); None when the server has no tokens."""
    principal = conn.scope.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, str) else None


class Keyring:
    """The tokens' digests. `principal` compares a presented token with every one of them
    in constant time (no early exit, and digests are all the same length)."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.digests = tuple(hashlib.sha256(t.encode()).digest() for t in tokens)

    def __bool__(self) -> bool:
        return bool(self.digests)

    def principal(self, presented: str) -> str | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found: bytes | None = None
        for known in self.digests:
            if hmac.compare_digest(digest, known):
                found = known
        return None if found is None else found.hex()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def offered_subprotocols(scope: Scope) -> list[str]:
    return [str(p) for p in scope.get("subprotocols") or ()]


def chosen_subprotocol(offered: list[str]) -> str | None:
    """`tokenwire` when offered; else the bearer subprotocol, echoed; else none."""
    if SUBPROTOCOL in offered:
        return SUBPROTOCOL
    return next((p for p in offered if p.startswith(BEARER_SUBPROTOCOL_PREFIX)), None)


def own_origin(scope: Scope, headers: Headers) -> str | None:
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    host = headers.get("host")
    return None if host is None else normal_origin(f"{scheme}://{host}")


class AccessGuard:
    """Tokens on every endpoint but /healthz, origins on the WebSocket (module docstring)."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.keyring = Keyring(settings.tokens.values)
        self.origins = frozenset(settings.cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def authenticate(self, scope: Scope, presented: str | None) -> RequestRefused | None:
        """Record the principal in the scope; the refusal when there is none."""
        if not self.keyring:
            return None
        if presented is None:
            return RequestRefused(401, "this server needs `Authorization: Bearer <token>`")
        principal = self.keyring.principal(presented)
        if principal is None:
            return RequestRefused(401, "the bearer token is not valid")
        scope[PRINCIPAL_KEY] = principal
        return None

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.keyring and scope["path"] not in OPEN_PATHS:
            presented = bearer_token(Headers(scope=scope).get("authorization"))
            refused = self.authenticate(scope, presented)
            if refused is not None:
                await refusal(scope["path"], refused, challenge(presented))(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        offered = offered_subprotocols(scope)
        origin = headers.get("origin")
        if origin is not None and not self.origin_allowed(origin, scope, headers):
            refused = RequestRefused(403, f"origin {origin[:100]!r} may not open a WebSocket here")
            await deny_upgrade(scope, receive, send, refused, {})
            return
        presented = bearer_token(headers.get("authorization"))
        if presented is None:
            presented = next(
                (
                    p.removeprefix(BEARER_SUBPROTOCOL_PREFIX)
                    for p in offered
                    if p.startswith(BEARER_SUBPROTOCOL_PREFIX)
                ),
                None,
            )
        refused = self.authenticate(scope, presented)
        if refused is not None:
            await deny_upgrade(scope, receive, send, refused, challenge(presented))
            return
        chosen = chosen_subprotocol(offered)
        await self.app(scope, receive, send if chosen is None else accepting(send, chosen))

    def origin_allowed(self, origin: str, scope: Scope, headers: Headers) -> bool:
        normal = normal_origin(origin)
        if normal is None:
            return False
        return normal in self.origins or normal == own_origin(scope, headers)


def challenge(presented: str | None) -> dict[str, str]:
    """`WWW-Authenticate` of a 401 (RFC 6750: `invalid_token` when a token was presented)."""
    return {"WWW-Authenticate": "Bearer" if presented is None else 'Bearer error="invalid_token"'}


def accepting(send: Send, subprotocol: str) -> Send:
    """`send`, with the subprotocol filled into the endpoint's `websocket.accept`."""

    async def send_accepting(message: Message) -> None:
        if message["type"] == "websocket.accept" and message.get("subprotocol") is None:
            message = {**message, "subprotocol": subprotocol}
        await send(message)

    return send_accepting


async def deny_upgrade(
    scope: Scope, receive: Receive, send: Send, refused: RequestRefused, headers: dict[str, str]
) -> None:
    """Refuse a WebSocket upgrade with an HTTP answer (status, JSON error) where the server
    can send one; otherwise by closing before accepting, which uvicorn answers with 403."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if HTTP_RESPONSE_EXTENSION in (scope.get("extensions") or {}):
        await refusal(scope["path"], refused, headers)(scope, receive, send)
    else:
        await send({"type": "websocket.close", "code": 1008})


def install(app: FastAPI, settings: ServerSettings) -> None:
    """The guard, and CORS in front of it when origins are listed (the last added runs
    first)."""
    app.add_middleware(AccessGuard, settings=settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
        )
