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

Before either, for every request, WebSocket upgrades and `/healthz` included:

- `Host` must name the server by a loopback name or address (`127.0.0.0/8`, `[::1]`,
  `localhost`, any port) or by an entry of `ServerSettings.allowed_hosts` (a name, an
  address or a network), else 421 `{"error": ...}`. A page of `http://evil.example` that
  makes its own name resolve to 127.0.0.1 (DNS rebinding) is same-origin for the browser,
  so only the Host it sends gives it away. An HTTP/1.1 request needs exactly one `Host`
  (400 otherwise, as RFC 9112 asks); an HTTP/1.0 one without it (not a browser) is not
  checked. An empty `Host` counts as none.
- A request with an `Origin` header that is neither the server's own origin (the scheme and
  the request's `Host`) nor on `ServerSettings.cors_origins` is refused with 403, on every
  endpoint and for every method: a cross-site page cannot start a generation, not even with
  a GET (`EventSource`) or a form POST. Requests without `Origin` (not a browser, or a
  same-origin GET) pass.
- `Transfer-Encoding` other than `chunked` alone is refused with 501 and the connection
  closed: the body's length cannot be known, and reading it as chunked would split the
  connection differently from a proxy in front.

Cross-site request forgery: besides the Origin check, a POST that starts a generation must
declare `Content-Type: application/json`, empty body or not (415 otherwise,
`servers.request_parsing`), which a cross-site page cannot send without a preflight.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errors import RequestRefused
from servers.responses import refusal
from servers.settings import ServerSettings, is_loopback_host, normal_origin
from servers.state import PRINCIPAL_KEY, principal_of

__all__ = ["PRINCIPAL_KEY", "AccessGuard", "Gate", "install", "principal_of"]

SUBPROTOCOL = "tokenwire"
BEARER_SUBPROTOCOL_PREFIX = "tokenwire.bearer."
OPEN_PATHS = frozenset({"/healthz"})
HTTP_RESPONSE_EXTENSION = "websocket.http.response"

MISDIRECTED = 421
CORS_METHODS = ("GET", "POST")
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "Last-Event-ID", "x-tokenwire-stream-id")
CORS_EXPOSED_HEADERS = ("Retry-After", "WWW-Authenticate")


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


def own_origin(scheme: str, host: str | None) -> str | None:
    """The origin of a page served by this server as `host` over `scheme`."""
    web_scheme = "https" if scheme in ("https", "wss") else "http"
    return None if host is None else normal_origin(f"{web_scheme}://{host}")


def host_name(host: str) -> str | None:
    """The name or address of a `Host` header, lower case, without port or brackets; None
    when it is not a host (a user part, a bad port, nothing)."""
    try:
        parts = urlsplit(f"//{host}")
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return None
    if parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return parts.hostname or None


class HostRule:
    """Which `Host` values the server answers to: loopback, and the allowed names,
    addresses and networks (`ServerSettings.allowed_hosts`)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowed:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry)

    def allows(self, host: str) -> bool:
        name = host_name(host)
        if name is None:
            return False
        if is_loopback_host(name) or name in self.names:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def transfer_codings(values: Iterable[str]) -> list[str]:
    """The codings of the `Transfer-Encoding` headers' values, in order, lower case."""
    return [c.strip().lower() for value in values for c in value.split(",") if c.strip()]


def unsupported_codings_message(codings: list[str]) -> str:
    """The 501's error, whether the app or the HTTP parser met the codings first."""
    named = ", ".join(codings)[:100]
    return f"Transfer-Encoding {named!r} is not supported: only chunked"


def unsupported_codings(codings: list[str]) -> bool:
    """Any coding but `chunked` alone: a body the server cannot delimit (501)."""
    return bool(codings) and codings != ["chunked"]


@dataclass(frozen=True, slots=True)
class Admitted:
    principal: str | None  # the caller's, when the server has tokens
    subprotocol: str | None = None  # a WebSocket's, to accept it with


@dataclass(frozen=True, slots=True)
class Refused:
    refusal: RequestRefused
    headers: dict[str, str]  # what the answer adds (Connection: close, WWW-Authenticate)


@dataclass(frozen=True, slots=True)
class Asked:
    """A request's head as the rules read it, from any stack: header names in lower case,
    every value of each (a repeated header must be seen repeated)."""

    scheme: str  # http, https, ws or wss
    http_version: str  # 1.0, 1.1, 2
    path: str
    headers: tuple[tuple[str, str], ...]
    subprotocols: tuple[str, ...] = ()  # a WebSocket's offer

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    def first(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


class Gate:
    """The access rules, for any stack: `admit` an HTTP request or a WebSocket upgrade
    (module docstring)."""

    def __init__(self, settings: ServerSettings) -> None:
        self.keyring = Keyring(settings.tokens.values)
        self.origins = frozenset(settings.cors_origins)
        self.hosts = HostRule(settings.allowed_hosts)

    def misdirected_or_foreign(self, asked: Asked) -> RequestRefused | None:
        """The refusal of a request whose Host the server does not answer to (421), or whose
        page comes from an origin that may not call it (403); None when neither."""
        hosts = asked.all("host")
        if hosts == [""]:  # names no host: as none (granian hands the app an empty Host for
            hosts = []  # a request without one, so only this way do the stacks agree)
        if len(hosts) > 1 or (not hosts and asked.http_version == "1.1"):
            return RequestRefused(400, "an HTTP/1.1 request needs exactly one Host header")
        host = hosts[0] if hosts else None
        if host is not None and not self.hosts.allows(host):
            return RequestRefused(
                MISDIRECTED,
                f"this server does not answer to Host {host[:100]!r}: it answers to loopback "
                "names and addresses, and to those given with --allowed-host",
            )
        origin = asked.first("origin")
        if origin is not None and not self.origin_allowed(origin, asked.scheme, host):
            return RequestRefused(
                403,
                f"origin {origin[:100]!r} may not call this server: only its own origin and "
                "those given with --cors-origin may",
            )
        return None

    def origin_allowed(self, origin: str, scheme: str, host: str | None) -> bool:
        normal = normal_origin(origin)
        if normal is None:
            return False
        return normal in self.origins or normal == own_origin(scheme, host)

    def authenticate(self, presented: str | None) -> RequestRefused | str | None:
        """The caller's principal; the refusal when the server has tokens and it has none;
        None without tokens."""
        if not self.keyring:
            return None
        if presented is None:
            return RequestRefused(401, "this server needs `Authorization: Bearer <token>`")
        principal = self.keyring.principal(presented)
        if principal is None:
            return RequestRefused(401, "the bearer token is not valid")
        return principal

    def admit(self, asked: Asked) -> Admitted | Refused:
        refused = self.misdirected_or_foreign(asked)
        if refused is not None:
            return Refused(refused, {"Connection": "close"})  # the body, if any, is not read
        codings = transfer_codings(asked.all("transfer-encoding"))
        if unsupported_codings(codings):
            return Refused(
                RequestRefused(501, unsupported_codings_message(codings)), {"Connection": "close"}
            )
        if not self.keyring or asked.path in OPEN_PATHS:
            return Admitted(None)
        presented = bearer_token(asked.first("authorization"))
        verdict = self.authenticate(presented)
        if isinstance(verdict, RequestRefused):
            return Refused(verdict, challenge(presented))
        return Admitted(verdict)

    def admit_socket(self, asked: Asked) -> Admitted | Refused:
        refused = self.misdirected_or_foreign(asked)
        if refused is not None:
            # as for HTTP: the connection ends with the answer (granian would otherwise
            # keep it open, its upgrade headers on the refusal)
            return Refused(refused, {"Connection": "close"})
        offered = list(asked.subprotocols)
        presented = bearer_token(asked.first("authorization"))
        if presented is None:
            presented = next(
                (
                    p.removeprefix(BEARER_SUBPROTOCOL_PREFIX)
                    for p in offered
                    if p.startswith(BEARER_SUBPROTOCOL_PREFIX)
                ),
                None,
            )
        verdict = self.authenticate(presented)
        if isinstance(verdict, RequestRefused):
            return Refused(verdict, challenge(presented))
        return Admitted(verdict, chosen_subprotocol(offered))


def asked_of(scope: Scope) -> Asked:
    """An ASGI request's head."""
    return Asked(
        scheme=str(scope.get("scheme", "http")),
        http_version=str(scope.get("http_version", "1.1")),
        path=str(scope["path"]),
        headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]),
        subprotocols=tuple(offered_subprotocols(scope)),
    )


class AccessGuard:
    """The access rules as ASGI middleware (module docstring), for the ASGI stacks."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.gate = Gate(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            verdict = self.gate.admit(asked_of(scope))
        elif scope["type"] == "websocket":
            verdict = self.gate.admit_socket(asked_of(scope))
        else:
            await self.app(scope, receive, send)
            return
        if isinstance(verdict, Refused):
            if scope["type"] == "http":
                answer = refusal(scope["path"], verdict.refusal, verdict.headers)
                await answer(scope, receive, send)
            else:
                await deny_upgrade(scope, receive, send, verdict.refusal, verdict.headers)
            return
        if verdict.principal is not None:
            scope[PRINCIPAL_KEY] = verdict.principal
        chosen = verdict.subprotocol
        await self.app(scope, receive, send if chosen is None else accepting(send, chosen))


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
