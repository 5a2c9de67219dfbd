"""What to probe: the URL, the request, and the secrets that must never be shown (pure).

Credentials come from the environment only: `--header-from-env 'Authorization=Bearer
$OPENAI_API_KEY'` names a variable, and the probe refuses a credential header given as a
flag value (`--header 'Authorization: ...'`), which would end up in shell history and
process listings. Every value taken from the environment is a secret: `redact` removes it
from anything the probe prints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from errors import UsageError

KINDS = (
    "auto",
    "sse",
    "ndjson",
    "text",
    "openai",
    "openai-responses",
    "vercel-data",
    "vercel-ui",
    "websocket",
)
HTTP_SCHEMES = {"http": 80, "https": 443}
WS_SCHEMES = {"ws": 80, "wss": 443}
CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie"}
CREDENTIAL_PARTS = re.compile(r"(^|[-_])(api[-_]?key|key|token|secret|password)$|apikey|api-key")
SECRET_QUERY = {"key", "api_key", "apikey", "token", "access_token", "sig", "signature", "auth"}
ENV_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
USER_AGENT = "tokenwire-probe/0.1"


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query: the request target
    url: str
    authority: str | None = None  # the Host to send when it differs (through a path: the URL's)

    @property
    def websocket(self) -> bool:
        return self.scheme in WS_SCHEMES

    @property
    def tls(self) -> bool:
        return self.scheme in ("https", "wss")

    @property
    def host_header(self) -> str:
        if self.authority is not None:
            return self.authority
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = (HTTP_SCHEMES | WS_SCHEMES)[self.scheme]
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class ProbeRequest:
    target: Target
    method: str
    headers: tuple[tuple[str, str], ...]  # user headers (from flags and the environment)
    body: bytes | None
    kind: str = "auto"
    repeat: int = 3
    timeout_s: float = 60.0
    fresh: bool = False  # every repeat on a new connection (default: repeats reuse one)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    env_headers: tuple[tuple[str, str], ...] = ()  # (header name, variable names) for display

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def parse_target(url: str) -> Target:
    """A URL the probe can use, or a UsageError naming what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"unusable URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in HTTP_SCHEMES and scheme not in WS_SCHEMES:
        raise UsageError(
            f"unusable URL {url!r}: the scheme must be http, https, ws or wss, "
            f"got {parts.scheme or 'none'!r}"
        )
    if not parts.hostname:
        raise UsageError(f"unusable URL {url!r}: no host")
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            "a URL must not carry credentials (user:password@); send them with "
            "--header-from-env 'Authorization=Basic $VAR'"
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default = (HTTP_SCHEMES | WS_SCHEMES)[scheme]
    return Target(scheme, parts.hostname, port or default, path, url)


def display_url(url: str) -> str:
    """The URL as the probe prints it: values of credential-like query parameters hidden."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, "***" if k.lower() in SECRET_QUERY else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def parse_header(text: str) -> tuple[str, str]:
    """`--header 'Name: value'`; credential headers are refused (use --header-from-env)."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not HEADER_NAME.match(name):
        raise UsageError(f"--header must look like 'Name: value', got {text[:60]!r}")
    if is_credential(name):
        raise UsageError(
            f"--header {name}: ... would put a credential on the command line (shell history, "
            f"process list); read it from the environment: --header-from-env "
            f"'{name}=Bearer $YOUR_KEY_VARIABLE'"
        )
    return name, value


def is_credential(name: str) -> bool:
    lower = name.lower()
    return lower in CREDENTIAL_HEADERS or bool(CREDENTIAL_PARTS.search(lower))


def parse_env_header(text: str, environ: Mapping[str, str]) -> tuple[str, str, tuple[str, ...]]:
    """`--header-from-env 'Name=template'`: `$VAR` / `${VAR}` in the template are replaced by
    the environment's values. Returns the name, the value and the variables used."""
    name, equals, template = text.partition("=")
    name = name.strip()
    if not equals or not HEADER_NAME.match(name):
        raise UsageError(
            f"--header-from-env must look like 'Name=Bearer $VARIABLE', got {name[:40]!r}"
        )
    variables = tuple(a or b for a, b in ENV_REFERENCE.findall(template))
    if not variables:
        raise UsageError(
            f"--header-from-env {name}=...: the value must name an environment variable "
            "($VARIABLE), not hold the secret itself"
        )
    for variable in variables:
        if not environ.get(variable):
            raise UsageError(
                f"--header-from-env {name}: environment variable {variable} is not set or empty"
            )
    value = ENV_REFERENCE.sub(lambda m: environ[m.group(1) or m.group(2)], template).strip()
    return name, value, variables


def read_data(text: str) -> bytes:
    """`--data JSON` or `--data @file` (its content must be JSON too)."""
    if text.startswith("@"):
        try:
            with open(text[1:], "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise UsageError(f"cannot read --data file {text[1:]}: {exc.strerror or exc}") from None
    else:
        raw = text.encode()
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"--data is not valid JSON: {exc}") from None
    return raw


def build_request(
    url: str,
    *,
    method: str | None,
    data: str | None,
    headers: Sequence[str],
    env_headers: Sequence[str],
    environ: Mapping[str, str],
    kind: str = "auto",
    repeat: int = 3,
    timeout_s: float = 60.0,
    fresh: bool = False,
) -> ProbeRequest:
    """A checked ProbeRequest from the command line's values (UsageError on bad input)."""
    target = parse_target(url)
    if kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
    if target.websocket and kind not in ("auto", "websocket"):
        raise UsageError(f"a {target.scheme}:// URL speaks WebSocket: use --kind websocket or auto")
    if kind == "websocket" and not target.websocket:
        raise UsageError("--kind websocket needs a ws:// or wss:// URL")
    body = read_data(data) if data is not None else None
    verb = (method or ("POST" if body is not None else "GET")).upper()
    if not re.fullmatch(r"[A-Z]+", verb):
        raise UsageError(f"--method must be an HTTP method such as GET or POST, got {method!r}")
    pairs = [parse_header(h) for h in headers]
    secrets: list[str] = []
    shown: list[tuple[str, str]] = []
    for text in env_headers:
        name, value, variables = parse_env_header(text, environ)
        pairs.append((name, value))
        secrets += [environ[v] for v in variables]
        shown.append((name, ", ".join(f"${v}" for v in variables)))
    return ProbeRequest(
        target=target,
        method=verb,
        headers=tuple(pairs),
        body=body,
        kind="websocket" if target.websocket else kind,
        repeat=repeat,
        timeout_s=timeout_s,
        fresh=fresh,
        secrets=tuple(s for s in secrets if s),
        env_headers=tuple(shown),
    )


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced (longest first, so a secret inside another goes too)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def accept_header(kind: str) -> str:
    if kind in ("sse", "vercel-ui", "openai-responses"):
        return "text/event-stream"
    if kind == "ndjson":
        return "application/x-ndjson"
    if kind == "auto":
        return "text/event-stream, application/x-ndjson;q=0.9, */*;q=0.8"
    return "*/*"


def accept_encoding() -> str:
    """What a browser would accept, limited to what the probe can decode."""
    try:
        import brotli  # noqa: F401
    except ImportError:
        return "gzip, deflate"
    return "gzip, deflate, br"


def http_headers(
    request: ProbeRequest, extra: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """The request's headers as sent: defaults, then the user's (which replace a default of
    the same name), then `extra` (e.g. Last-Event-ID on a reconnect)."""
    defaults = [
        ("Host", request.target.host_header),
        ("User-Agent", USER_AGENT),
        ("Accept", accept_header(request.kind)),
        ("Accept-Encoding", accept_encoding()),
    ]
    if request.body is not None:
        defaults.append(("Content-Type", "application/json"))
    given = {name.lower() for name, _ in [*request.headers, *extra]}
    headers = [(n, v) for n, v in defaults if n.lower() not in given]
    headers += [*request.headers, *extra]
    if request.body is not None:
        headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
        headers.append(("Content-Length", str(len(request.body))))
    return headers
