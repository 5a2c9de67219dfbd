"""Server settings that are not part of any one request: lifetimes, limits and test aids.

Every field is also a command-line flag of `python -m servers.run` (`--idle-timeout-s 30`),
generated from the field itself, so a new setting is one line here. A number is its own
flag's text; any other setting names a `Flag` that says how its text becomes the value and
back (`--token-file PATH` holds the tokens; `--cors-origin URL`, repeated, the origins).
Tokens are never written on a command line: `to_args` gives the file they came from, and
tokens from `TOKENWIRE_SERVER_TOKEN` travel in the environment a subprocess inherits. The
webhook signing secret travels the same way (`--webhook-secret-file PATH`, or
`TOKENWIRE_WEBHOOK_SECRET`).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from errors import ProtocolError, ServerSettingsError
from servers.faults import FAULTS, dump_faults, load_faults
from wire.webhook import SECRET_ENV as WEBHOOK_SECRET_ENV
from wire.webhook import checked_secret

SERVER_TOKEN_ENV = "TOKENWIRE_SERVER_TOKEN"
# Characters both a bearer token (RFC 6750) and a WebSocket subprotocol (an RFC 7230 token)
# may hold, so that one token works in the header and in `Sec-WebSocket-Protocol` alike.
TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+-]+")
TOKEN_HINT = (
    "a token is 1 or more of A-Z a-z 0-9 . _ ~ + - "
    "(make one: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def setting(default: Any, help_text: str, flag: Flag | None = None) -> Any:
    """A field of ServerSettings: its default, its flag's help, and how a setting that is
    not a number is given on the command line (`flag`)."""
    metadata: dict[str, Any] = {"help": help_text}
    if flag is not None:
        metadata["flag"] = flag
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, slots=True)
class Flag:
    """How a setting that is not a number is given on the command line. argparse keeps the
    flag's text (a list of texts when `repeat`, None when the flag is absent); `load` turns
    that into the field's value (raising ServerSettingsError), `dump` turns a value back
    into the flag's texts, one per occurrence."""

    name: str
    metavar: str
    load: Callable[[Any], Any]
    dump: Callable[[Any], tuple[str, ...]]
    repeat: bool = False


def checked_token(token: str, where: str) -> str:
    if not TOKEN_CHARS.fullmatch(token):
        raise ServerSettingsError(f"the token in {where} is not usable: {TOKEN_HINT}")
    return token


@dataclass(frozen=True, slots=True)
class Tokens:
    """Bearer tokens, each a separate principal, and the file they were read from (None:
    from `TOKENWIRE_SERVER_TOKEN`). The tokens never show in a repr."""

    values: tuple[str, ...] = field(default=(), repr=False)
    path: Path | None = None

    def __bool__(self) -> bool:
        return bool(self.values)

    @classmethod
    def load(cls, path: str | None, environ: Mapping[str, str] = os.environ) -> Tokens:
        """From the file at `path` when given, else from the environment variable, else none."""
        return cls.from_file(Path(path)) if path is not None else cls.from_env(environ)

    @classmethod
    def from_file(cls, path: Path) -> Tokens:
        """One token per line (surrounding whitespace and blank lines ignored)."""
        path = path.expanduser().absolute()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ServerSettingsError(f"cannot read --token-file {path}: {reason}") from None
        tokens = [line.strip() for line in lines if line.strip()]
        if not tokens:
            raise ServerSettingsError(f"--token-file {path} holds no token; {TOKEN_HINT}")
        for number, token in enumerate(tokens, 1):
            checked_token(token, f"--token-file {path} (token {number})")
        return cls(tuple(dict.fromkeys(tokens)), path)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Tokens:
        value = environ.get(SERVER_TOKEN_ENV)
        if value is None:
            return cls()
        if not value.strip():
            raise ServerSettingsError(f"{SERVER_TOKEN_ENV} is set but empty; {TOKEN_HINT}")
        return cls((checked_token(value.strip(), SERVER_TOKEN_ENV),))

    def flag_texts(self) -> tuple[str, ...]:
        """The file, never the tokens (tokens from the environment: nothing)."""
        return () if self.path is None else (str(self.path),)


def is_loopback_host(host: str) -> bool:
    """`localhost` or an IP literal in 127.0.0.0/8 or ::1 (brackets allowed). Other names are
    not looked up: a name can resolve to anything (and differently later)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normal_origin(text: str) -> str | None:
    """`scheme://host[:port]` as a browser writes it in `Origin` (lower case, no default
    port, no path); None for anything that is not an http(s) origin (`null`, `*`, a URL
    with a path)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port in (None, DEFAULT_PORTS[scheme]) else f":{port}")


def origins_of(given: list[str] | None, flag: str, example: str) -> tuple[str, ...]:
    """The normal origins given to a repeated `flag`, without repeats; ServerSettingsError
    (showing `example`) for anything that is not an origin."""
    origins = []
    for text in given or ():
        origin = normal_origin(text)
        if origin is None:
            raise ServerSettingsError(
                f"{flag} {text!r} is not an origin; give scheme://host[:port], "
                f"e.g. {example} (repeat the flag for several)"
            )
        origins.append(origin)
    return tuple(dict.fromkeys(origins))


def load_origins(given: list[str] | None) -> tuple[str, ...]:
    return origins_of(given, "--cors-origin", "http://localhost:5173")


def dump_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    return origins


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    """The secret every webhook delivery is signed with (HMAC-SHA256), shared with the
    receivers, and the file it was read from (None: from `TOKENWIRE_WEBHOOK_SECRET`, or no
    secret at all: the server then refuses webhook subscriptions). Never in a repr."""

    value: str | None = field(default=None, repr=False)
    path: Path | None = None

    def __bool__(self) -> bool:
        return self.value is not None

    @classmethod
    def load(cls, path: str | None, environ: Mapping[str, str] = os.environ) -> WebhookSecret:
        """From the file at `path` when given (its first non-blank line), else from the
        environment variable, else none."""
        try:
            if path is not None:
                where = Path(path).expanduser().absolute()
                try:
                    lines = where.read_text(encoding="utf-8").splitlines()
                except (OSError, UnicodeDecodeError) as exc:
                    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                    raise ServerSettingsError(
                        f"cannot read --webhook-secret-file {where}: {reason}"
                    ) from None
                text = next((line for line in lines if line.strip()), "")
                return cls(checked_secret(text, f"--webhook-secret-file {where}"), where)
            value = environ.get(WEBHOOK_SECRET_ENV)
            return cls() if value is None else cls(checked_secret(value, WEBHOOK_SECRET_ENV))
        except ProtocolError as exc:
            raise ServerSettingsError(str(exc)) from None

    def flag_texts(self) -> tuple[str, ...]:
        """The file, never the secret (a secret from the environment: nothing)."""
        return () if self.path is None else (str(self.path),)


def load_webhook_allow(given: list[str] | None) -> tuple[str, ...]:
    return origins_of(given, "--webhook-allow", "https://hooks.example.com")


HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")


def normal_allowed_host(text: str) -> str | None:
    """An `--allowed-host` entry as it is compared: a host name (lower case, no port), an IP
    address, or an IP network in CIDR notation (`10.213.0.0/16`); None for anything else
    (a port, a scheme, a wildcard)."""
    text = text.strip().lower()
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=False))
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    return text if HOST_NAME.fullmatch(text) else None


def load_allowed_hosts(given: list[str] | None) -> tuple[str, ...]:
    hosts = []
    for text in given or ():
        host = normal_allowed_host(text)
        if host is None:
            raise ServerSettingsError(
                f"--allowed-host {text!r} is not a host name, an IP address or an IP network; "
                "give e.g. bench.example.com, 192.0.2.7 or 10.213.0.0/16, without a port "
                "(repeat the flag for several)"
            )
        hosts.append(host)
    return tuple(dict.fromkeys(hosts))


NO_TOKENS = Tokens()
NO_WEBHOOK_SECRET = WebhookSecret()
TOKEN_FILE_FLAG = Flag("--token-file", "PATH", Tokens.load, Tokens.flag_texts)
CORS_ORIGIN_FLAG = Flag("--cors-origin", "URL", load_origins, dump_origins, repeat=True)
WEBHOOK_SECRET_FLAG = Flag(
    "--webhook-secret-file", "PATH", WebhookSecret.load, WebhookSecret.flag_texts
)
WEBHOOK_ALLOW_FLAG = Flag(
    "--webhook-allow", "ORIGIN", load_webhook_allow, dump_origins, repeat=True
)
FAULT_FLAG = Flag("--fault", "NAME", load_faults, dump_faults, repeat=True)


def load_text(given: str | None) -> str:
    return given or ""


def load_path(given: str | None) -> str:
    """A file's path, absolute (a worker process may start elsewhere); "" when not given."""
    return str(Path(given).expanduser().absolute()) if given else ""


def dump_text(value: str) -> tuple[str, ...]:
    return (value,) if value else ()


WEBTRANSPORT_CERT_FLAG = Flag("--webtransport-cert", "PEM", load_path, dump_text)
WEBTRANSPORT_KEY_FLAG = Flag("--webtransport-key", "PEM", load_path, dump_text)
WEBTRANSPORT_ADDRESS_FLAG = Flag("--webtransport-address", "HOST:PORT", load_text, dump_text)
ALLOWED_HOST_FLAG = Flag("--allowed-host", "HOST", load_allowed_hosts, dump_origins, repeat=True)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    idle_timeout_s: float = setting(
        30.0, "a stream that nobody reads or polls for this long is cancelled"
    )
    retention_s: float = setting(600.0, "a finished stream's timeline stays fetchable this long")
    max_long_poll_wait_s: float = setting(60.0, "the longest `wait` a long poll may ask for")
    resume_grace_s: float = setting(
        5.0, "a push stream whose reader left waits this long for a resume before it is cancelled"
    )
    # limits: each refusal is a 4xx JSON error naming the setting
    max_body_bytes: int = setting(1 << 20, "the largest request body accepted (413 beyond)")
    max_prompt_chars: int = setting(100_000, "the longest prompt accepted (400 beyond)")
    max_conversation_chars: int = setting(
        1 << 20,
        "the longest conversation a turn may send or the server keep for one (400 beyond)",
    )
    max_tokens_limit: int = setting(65_536, "the largest max_tokens a request may ask for")
    max_active_streams: int = setting(
        10_000, "generations running at once; more are refused with 503 and Retry-After"
    )
    request_timeout_s: float = setting(
        10.0, "a request head or body that has not arrived whole by then is dropped"
    )
    max_head_bytes: int = setting(
        32 * 1024,
        "the largest request head (request line and headers) accepted; beyond it the answer "
        "is 431 and the connection is closed, before the rest is read",
    )
    write_timeout_s: float = setting(
        30.0,
        "a connection whose client accepts no bytes for this long while a response or "
        "WebSocket message waits to be written is dropped (a push stream then waits "
        "resume_grace_s for a resume, as after any drop)",
    )
    ws_max_queue_bytes: int = setting(
        1 << 20,
        "bytes a WebSocket connection may have queued for a client that does not read them "
        "(answers to its pings included); beyond it the connection is closed with 1008",
    )
    ws_max_control_frames_per_s: int = setting(
        50,
        "pings and pongs a WebSocket client may send per second; more close the connection "
        "with 1008",
    )
    max_retained_bytes: int = setting(
        256 << 20,
        "bytes the finished streams kept for their timelines may hold (texts and stamps); "
        "beyond it the oldest are forgotten first, as beyond 100,000 streams",
    )
    max_model_name_chars: int = setting(256, "the longest `model` name a chat request may give")
    # test aids for the regression check: a deliberate slowdown and deliberate bloat
    inject_delay_ms: float = setting(0.0, "test aid: hold every token this long after the source")
    inject_pad_bytes: int = setting(0, "test aid: pad every token message with this many bytes")
    # how push responses present themselves to proxies (servers/push_response.py)
    streaming_headers: int = setting(
        1,
        "1: push responses send `Cache-Control: no-cache` and `X-Accel-Buffering: no`, so "
        "proxies pass them through as they come; 0: they do not, as a naive server would "
        "(nginx then buffers them)",
    )
    # the failure lab (servers/faults.py): deliberate mistakes, and the keep-alive fix
    faults: tuple[str, ...] = setting(
        (),
        "a streaming mistake to make on purpose, for the failure lab; repeat for several: "
        + "; ".join(f"{name}: {what}" for name, what in FAULTS.items()),
        FAULT_FLAG,
    )
    heartbeat_s: float = setting(
        0.0,
        "while a push stream has nothing to send for this long, send keep-alive bytes (an SSE "
        "comment, a blank NDJSON line, a WebSocket ping); 0: none",
    )
    # who may call the server, and from which pages (servers/access.py)
    tokens: Tokens = setting(  # noqa: RUF009 (a frozen dataclass: immutable)
        NO_TOKENS,
        "a file of bearer tokens, one per line, each a separate principal (without "
        f"it: {SERVER_TOKEN_ENV}, when set). With tokens, every endpoint but /healthz needs "
        "`Authorization: Bearer <token>` and a stream is visible to its creator only",
        TOKEN_FILE_FLAG,
    )
    cors_origins: tuple[str, ...] = setting(
        (),
        "an origin (scheme://host[:port]) whose pages may call the server (CORS) "
        "and open its WebSocket; repeat for several (default: the server's own origin only; "
        "a request from any other origin is refused with 403)",
        CORS_ORIGIN_FLAG,
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        "a name, IP address or IP network (CIDR) the server answers to in the `Host` header, "
        "besides loopback (127.0.0.0/8, ::1, localhost, any port); repeat for several. Any "
        "other Host is refused with 421: a page that rebinds its own name to 127.0.0.1 "
        "cannot reach the server",
        ALLOWED_HOST_FLAG,
    )

    # webhooks (servers/webhook.py): the signing secret, where callbacks may go, retries
    webhook_secret: WebhookSecret = setting(  # noqa: RUF009 (a frozen dataclass: immutable)
        NO_WEBHOOK_SECRET,
        "a file whose first line is the secret every webhook delivery is signed "
        f"with, HMAC-SHA256, shared with the receivers (without it: {WEBHOOK_SECRET_ENV}, "
        "when set; with neither, webhook subscriptions are refused)",
        WEBHOOK_SECRET_FLAG,
    )
    webhook_allow: tuple[str, ...] = setting(
        (),
        "an origin (scheme://host[:port]) webhook callbacks may be sent to besides "
        "loopback; repeat for several (default: loopback only, anything else is refused "
        "with 403: a sender that posts anywhere it is told is an SSRF hole)",
        WEBHOOK_ALLOW_FLAG,
    )
    webhook_attempts: int = setting(
        5, "tries per webhook delivery (the first and its retries) before the stream is cancelled"
    )
    webhook_retry_ms: float = setting(
        100.0, "the wait before a webhook delivery's first retry; it doubles at each retry"
    )
    webhook_timeout_s: float = setting(10.0, "how long one webhook POST may take")
    webhook_max_connections: int = setting(
        1000, "connections the webhook sender's one pooled HTTP client may hold"
    )
    # WebTransport (servers/webtransport.py): a QUIC listener of the server's own
    webtransport_cert: str = setting(
        "",
        "answer WebTransport (the `webtransport` transport) over QUIC with this certificate "
        "(with --webtransport-key), on the UDP port of the listening port's number "
        "(servers.run fills in --webtransport-address)",
        WEBTRANSPORT_CERT_FLAG,
    )
    webtransport_key: str = setting(
        "", "the --webtransport-cert's private key", WEBTRANSPORT_KEY_FLAG
    )
    webtransport_address: str = setting(
        "",
        "where WebTransport answers, HOST:PORT on UDP (default: the listening socket's)",
        WEBTRANSPORT_ADDRESS_FLAG,
    )

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("server settings")
        for f in fields(ServerSettings):
            flag: Flag | None = f.metadata.get("flag")
            if flag is not None:
                group.add_argument(
                    flag.name,
                    dest=f.name,
                    metavar=flag.metavar,
                    action="append" if flag.repeat else "store",
                    default=None,
                    help=f.metadata["help"],
                )
                continue
            default = f.default if f.default is not MISSING else None
            group.add_argument(
                "--" + f.name.replace("_", "-"),
                type=type(default),
                default=default,
                help=f"{f.metadata['help']} (default {default})",
            )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServerSettings:
        """The settings the flags give (raises ServerSettingsError for a bad token file or
        origin); tokens come from `TOKENWIRE_SERVER_TOKEN` when no --token-file is given."""
        values = {}
        for f in fields(cls):
            given, flag = getattr(args, f.name), f.metadata.get("flag")
            values[f.name] = given if flag is None else flag.load(given)
        return cls(**values)

    def to_args(self) -> list[str]:
        """Flags that reproduce these settings where they differ from the defaults. Tokens
        from `TOKENWIRE_SERVER_TOKEN` give no flag: pass the variable to the subprocess."""
        default = ServerSettings()
        args: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == getattr(default, f.name):
                continue
            flag: Flag | None = f.metadata.get("flag")
            if flag is None:
                args += ["--" + f.name.replace("_", "-"), str(value)]
            else:
                args += [arg for text in flag.dump(value) for arg in (flag.name, text)]
        return args
