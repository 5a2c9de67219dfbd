"""The one place a transport is named.

Each entry ties a transport's server router (`servers/<name>.py`) to its client exchange
logic (`clients/<name>.py`, run by both the asyncio and the blocking driver) and says what
it is: its kind, how to call it, its chart colour and its capabilities. Everything else
reads this registry: the server app mounts the routers, the driver and locust build
clients from the exchange logic, the CLI lists the choices, locust's User classes are
generated from it, charts take colours and the regression check takes kinds from it.

Adding a transport is one `Transport(...)` line here plus its two modules (and a codec in
`wire/` if it needs one): see docs/adding-a-transport.md.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, cast

from errors import ProtocolError, UsageError
from wire import carriages
from wire.framing import Framing, get_framing
from wire.webhook import MAX_BATCH_MS

if TYPE_CHECKING:  # for annotations only: the registry imports neither side until asked
    from fastapi import APIRouter

# A transport's client side, as the registry sees it: `clients.exchange.ExchangeLogic`, a
# generator function of (settings, request, result). Written out here, not imported: the
# clients read the registry (their settings' defaults), so the registry may not import them.
ClientLogic = Callable[..., Generator[Any, Any, None]]

DIRECT = "direct"  # not a transport: a live upstream read straight, as the reference
DIRECT_COLOUR = "#7f7f7f"
FALLBACK_COLOUR = "#17becf"

T = TypeVar("T")


class Kind(StrEnum):
    PUSH = "push"  # the server sends each token as it exists, on an open connection
    POLL = "poll"  # the client asks for what exists, request after request
    CALLBACK = "callback"  # the server calls the client back (webhooks)


@dataclass(frozen=True, slots=True)
class Capabilities:
    resume: bool  # a dropped stream can be continued from the last index received
    cancel_on_disconnect: bool  # the server notices a client leaving and stops generating
    browser: bool  # a browser page can be this transport's client


@dataclass(frozen=True, slots=True)
class Knob:
    """A setting of one transport, declared with it: the scenario field, the sweep axis and
    the `bench.py run` flag (`--poll-interval-ms`) all carry its name, whose last word is its
    unit. `design_delay`: each token waits up to this long by design (a poll interval, a
    batching window), which capacity allows on top of its delay limits."""

    name: str
    title: str  # in sentences and chart titles, e.g. "poll interval"
    default: float
    help: str
    maximum: float
    positive: bool = True  # more than 0 (else 0 or more)
    design_delay: bool = False
    caption: str = "{title} {value}"  # in a chart's title, with the value formatted

    def check(self, value: float) -> str | None:
        """Why `value` cannot be this knob's, or None."""
        if not self.positive:
            if 0 <= value <= self.maximum:
                return None
            return f"{self.name} must be from 0 to {self.maximum:g}, got {value:g}"
        if value <= 0:
            return f"{self.name} must be a positive number, got {value:g}"
        if value > self.maximum:
            return f"{self.name} must be at most {self.maximum:g}, got {value:g}"
        return None


@dataclass(frozen=True, slots=True)
class Transport:
    name: str  # as in results, CLI choices and scenario files
    kind: Kind
    title: str  # CamelCase, for generated names (locust's `<title>User`)
    endpoint: str  # how to call it, for `bench.py serve` and the server's index
    # the server side: a router, or "module:attribute" naming one; None: it has no HTTP
    # endpoint (WebTransport: its `listener` serves it)
    server: APIRouter | str | None
    client: ClientLogic | str  # the client side: the exchange logic, or "module:attribute"
    colour: str  # in every chart
    capabilities: Capabilities
    interval_paced: bool = False  # tokens wait for the client's poll interval (short polling)
    carriage: str = carriages.LINES  # how its messages are delimited (`wire.carriages`)
    upgrade_path: str | None = None  # its WebSocket upgrade: a proxy must pass it on as one
    page_reader: str | None = None  # the reader a browser page runs it with (browser/page.js)
    raw_path: str | None = None  # where the raw client POSTs for a json stream (raw_client.py)
    knobs: tuple[Knob, ...] = ()  # its own settings
    # its stack-neutral routes ("module:attribute" naming a tuple of `servers.exchange.Route`),
    # which every stack but FastAPI's serves (`stacks.py`); None: FastAPI stacks only
    routes: str | None = None
    # a listener of its own that the server runs beside the stack, inside the core's event
    # loop ("module:attribute" naming a function of the `ServerState` that returns an async
    # context manager): WebTransport's QUIC listener
    listener: str | None = None
    quic: bool = False  # it travels over QUIC (UDP): only on paths that carry QUIC

    def design_delay_ms(self, value_of: Callable[[str], float]) -> tuple[float, str] | None:
        """(ms, the knob's title) of the wait each token may spend by design, given the
        knobs' values (`value_of(name)`); None when it has none or it is 0."""
        for knob in self.knobs:
            if knob.design_delay and value_of(knob.name) > 0:
                scale = 1000.0 if knob.name.endswith("_s") else 1.0
                return value_of(knob.name) * scale, knob.title
        return None

    @property
    def router(self) -> APIRouter:
        """The server's router, imported on first use (analysis never needs FastAPI)."""
        if self.server is None:
            raise KeyError(f"transport {self.name} has no router (its listener serves it)")
        return resolve(self.server)

    @property
    def exchange(self) -> ClientLogic:
        """The client's exchange logic, imported on first use."""
        return resolve(self.client)


def resolve(binding: T | str) -> T:
    """`binding` itself, or the attribute a "package.module:attribute" string names, taken to
    be what the binding stands for (a field typed `APIRouter | str` names a router)."""
    return cast(T, load(binding)) if isinstance(binding, str) else binding


def load(name: str) -> object:
    """The attribute a "package.module:attribute" string names."""
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True, slots=True)
class TransportRegistry:
    """An ordered, immutable set of transports. `with_transport` makes an extended copy
    (a test can register a throwaway transport without touching this module)."""

    transports: tuple[Transport, ...]

    def __iter__(self) -> Iterator[Transport]:
        return iter(self.transports)

    def __contains__(self, name: object) -> bool:
        return any(t.name == name for t in self.transports)

    def __len__(self) -> int:
        return len(self.transports)

    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.transports)

    def get(self, name: str) -> Transport:
        for transport in self.transports:
            if transport.name == name:
                return transport
        raise KeyError(f"unknown transport {name!r}; known: {', '.join(self.names())}")

    def of_kind(self, kind: Kind) -> tuple[str, ...]:
        return tuple(t.name for t in self.transports if t.kind is kind)

    def interval_paced(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.transports if t.interval_paced)

    def routers(self) -> list[APIRouter]:
        """Each router once, in registry order (both pollings share one)."""
        unique: list[APIRouter] = []
        for transport in self.transports:
            if transport.server is None:
                continue
            if not any(transport.router is seen for seen in unique):
                unique.append(transport.router)
        return unique

    def listeners(self) -> list[Callable[[Any], contextlib.AbstractAsyncContextManager[None]]]:
        """Each transport's own listener (`Transport.listener`), in registry order."""
        return [cast(Any, load(t.listener)) for t in self.transports if t.listener is not None]

    def over_quic(self) -> tuple[str, ...]:
        """The transports that travel over QUIC (`Transport.quic`)."""
        return tuple(t.name for t in self.transports if t.quic)

    def colour(self, name: str) -> str:
        if name == DIRECT:
            return DIRECT_COLOUR
        return next((t.colour for t in self.transports if t.name == name), FALLBACK_COLOUR)

    def knobs(self) -> tuple[Knob, ...]:
        """Every transport's knobs, in registry order."""
        return tuple(k for t in self.transports for k in t.knobs)

    def knob(self, name: str) -> Knob:
        for knob in self.knobs():
            if knob.name == name:
                return knob
        raise KeyError(f"no transport has a setting {name!r}")

    def page_readable(self) -> tuple[str, ...]:
        """The transports a browser page can run: a page reader, and `capabilities.browser`."""
        return tuple(
            t.name for t in self.transports if t.page_reader is not None and t.capabilities.browser
        )

    def reading_with(self, page_reader: str) -> str | None:
        """The first transport a page runs with `page_reader`, if any."""
        return next((t.name for t in self.transports if t.page_reader == page_reader), None)

    def raw_readable(self) -> tuple[str, ...]:
        """The push transports the raw client can count: a json stream over a POST
        (`raw_path`) or a WebSocket (`upgrade_path`)."""
        return tuple(t.name for t in self.transports if t.raw_path is not None or t.upgrade_path)

    def upgrade_paths(self) -> tuple[str, ...]:
        """The paths of the transports' WebSocket upgrades, each once (a proxy in front
        passes these on with `Upgrade` and `Connection`)."""
        return tuple(dict.fromkeys(t.upgrade_path for t in self.transports if t.upgrade_path))

    def carrying(self, framing: Framing) -> tuple[str, ...]:
        """The transports a framing travels over (those whose carriage it travels on)."""
        return tuple(t.name for t in self.transports if framing.can_travel(t.carriage))

    def framing_over(self, framing_name: str, transport: str) -> Framing:
        """The framing called `framing_name` as it travels over `transport`; ProtocolError,
        in transports' names, when it cannot."""
        framing = get_framing(framing_name)
        if not framing.can_travel(self.get(transport).carriage):
            raise ProtocolError(
                f"framing {framing.name} cannot travel over {transport}; "
                f"it travels over {', '.join(self.carrying(framing))}"
            )
        return framing.over(self.get(transport).carriage)

    def with_transport(self, transport: Transport) -> TransportRegistry:
        if transport.name in self or transport.name == DIRECT:
            raise ValueError(f"transport {transport.name!r} is already registered")
        taken = {k.name for k in self.knobs()} & {k.name for k in transport.knobs}
        if taken:
            raise ValueError(f"transport {transport.name!r}: setting(s) {sorted(taken)} taken")
        return TransportRegistry((*self.transports, transport))


# region capabilities (shown in docs/adding-a-transport.md)
# Polling resumes by nature (the next poll names its offset); SSE resumes with Last-Event-ID,
# chunked with ?stream=&from=, WebSocket with a {"resume"} first message. Code reads these:
# the scenario refuses a planned drop on a transport that cannot resume, and the fault tests
# (tests/clients/test_faults.py) drop, resume and leave every transport that says it can.
POLLED = Capabilities(resume=True, cancel_on_disconnect=False, browser=True)
RESUMABLE_PUSH = Capabilities(resume=True, cancel_on_disconnect=True, browser=True)
PUSH = Capabilities(resume=False, cancel_on_disconnect=True, browser=True)
# Webhooks: a failed delivery is retried from its first token; a receiver that is gone (410,
# or every retry failed) cancels the generation; a browser page cannot receive a POST.
CALLBACK = Capabilities(resume=True, cancel_on_disconnect=True, browser=False)
# endregion

BUILTIN = TransportRegistry(
    (
        Transport(
            name="short_poll",
            kind=Kind.POLL,
            title="ShortPoll",
            endpoint="POST /v1/streams, then GET /v1/streams/{id}?offset=K",
            server="servers.polling:router",
            routes="servers.polling:ROUTES",
            client="clients.short_poll:exchange",
            colour="#d62728",
            capabilities=POLLED,
            interval_paced=True,
            knobs=(
                Knob(
                    "poll_interval_ms",
                    "poll interval",
                    100.0,
                    "short polling: time between poll starts",
                    maximum=3_600_000,
                    design_delay=True,
                    caption="short poll every {value} ms",
                ),
            ),
            carriage=carriages.ENVELOPE,
            page_reader="polls",
        ),
        Transport(
            name="long_poll",
            kind=Kind.POLL,
            title="LongPoll",
            endpoint="POST /v1/streams, then GET /v1/streams/{id}?offset=K&wait=SECONDS",
            server="servers.polling:router",
            routes="servers.polling:ROUTES",
            client="clients.long_poll:exchange",
            colour="#ff7f0e",
            capabilities=POLLED,
            carriage=carriages.ENVELOPE,
            knobs=(
                Knob(
                    "long_poll_wait_s",
                    "long-poll wait",
                    30.0,
                    "long polling: how long the server may hold a poll",
                    maximum=3600,
                    caption="long-poll wait {value} s",
                ),
            ),
            page_reader="heldPolls",
        ),
        Transport(
            name="sse",
            kind=Kind.PUSH,
            title="SSE",
            endpoint="POST /v1/sse (JSON body) or GET /v1/sse?seed=N (EventSource)",
            server="servers.sse:router",
            routes="servers.sse:ROUTES",
            client="clients.sse:exchange",
            colour="#1f77b4",
            capabilities=RESUMABLE_PUSH,
            carriage=carriages.EVENTS,
            page_reader="eventStream",
            raw_path="/v1/sse?framing=json",
        ),
        Transport(
            name="chunked",
            kind=Kind.PUSH,
            title="Chunked",
            endpoint="POST /v1/chunked (NDJSON, one chunk per token)",
            server="servers.chunked:router",
            routes="servers.chunked:ROUTES",
            client="clients.chunked:exchange",
            colour="#2ca02c",
            capabilities=RESUMABLE_PUSH,
            carriage=carriages.LINES,
            page_reader="ndjsonStream",
            raw_path="/v1/chunked?framing=json",
        ),
        # region websocket (shown in docs/adding-a-transport.md)
        Transport(
            name="websocket",
            kind=Kind.PUSH,
            title="WebSocket",
            endpoint="WS /v1/ws (send the request as JSON)",
            server="servers.websocket:router",
            routes="servers.websocket:ROUTES",
            client="clients.websocket:exchange",
            colour="#9467bd",
            capabilities=RESUMABLE_PUSH,
            carriage=carriages.MESSAGES,
            upgrade_path="/v1/ws",
            page_reader="webSocket",
        ),
        # endregion
        Transport(
            name="webtransport",
            kind=Kind.PUSH,
            title="WebTransport",
            endpoint="WebTransport https://HOST:PORT/v1/wt (HTTP/3 on UDP, the TCP port's "
            "number): a stream per request, length-prefixed JSON messages as on /v1/ws",
            server=None,
            routes="servers.webtransport:ROUTES",
            listener="servers.webtransport:listening",
            client="clients.webtransport:exchange",
            colour="#e377c2",
            capabilities=RESUMABLE_PUSH,
            carriage=carriages.MESSAGES,
            page_reader="webTransport",
            quic=True,
        ),
        Transport(
            name="webhook",
            kind=Kind.CALLBACK,
            title="Webhook",
            endpoint="POST /v1/webhooks (JSON body with callback_url; signed POSTs back to it)",
            server="servers.webhook:router",
            routes="servers.webhook:ROUTES",
            client="clients.webhook:exchange",
            colour="#8c564b",
            capabilities=CALLBACK,
            carriage=carriages.DELIVERIES,
            knobs=(
                Knob(
                    "batch_ms",
                    "batch_ms",
                    0.0,
                    "webhook: how long the server gathers tokens per POST (0: one each)",
                    maximum=MAX_BATCH_MS,
                    positive=False,
                    design_delay=True,
                    caption="webhook batch_ms {value}",
                ),
            ),
        ),
    )
)


PLUGINS_ENV = "TOKENWIRE_TRANSPORTS"


def with_plugins(registry: TransportRegistry, spec: str | None) -> TransportRegistry:
    """`registry` extended (`with_transport`) by the transports that `spec` names, each
    "package.module:ATTRIBUTE" where ATTRIBUTE is a `Transport`, comma-separated."""
    for entry in (e.strip() for e in (spec or "").split(",")):
        if not entry:
            continue
        try:
            transport = load(entry) if ":" in entry else None
        except (ImportError, AttributeError) as exc:
            raise UsageError(f"{PLUGINS_ENV}: cannot load {entry!r}: {exc}") from None
        if not isinstance(transport, Transport):
            raise UsageError(
                f"{PLUGINS_ENV}: {entry!r} is not a Transport; name one as package.module:NAME"
            )
        try:
            registry = registry.with_transport(transport)
        except ValueError as exc:
            raise UsageError(f"{PLUGINS_ENV}: {exc}") from None
    return registry


# The transports every part of tokenwire reads: the built-in ones, and those a user brings
# without editing the project (`TOKENWIRE_TRANSPORTS=mypackage.transport:MINE`). Server and
# client processes the harness starts inherit the variable, so they serve and run the same.
TRANSPORTS = with_plugins(BUILTIN, os.environ.get(PLUGINS_ENV))
