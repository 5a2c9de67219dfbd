"""Paths: what stands between the benchmark's clients and the server.

A path is one or more layers joined with `+`, listed from the server outward:
`nginx+net:4g` puts nginx in front of the server and an emulated 4G network between the
clients and nginx. Each layer is started (and stopped, by PID) by the harness around a
run, takes the endpoint of what is behind it, and hands the clients a new endpoint.

    loopback                 nothing in between (the default)
    nginx                    a real nginx reverse proxy (harness/measure/paths/nginx.py)
    nginx-h2                 the same with TLS and HTTP/2 towards the clients
    nginx-gzip               nginx with `gzip on` for the streamed types
    net:PROFILE              an emulated network (harness/measure/paths/net/): every IP
    net:rtt=80ms,bw=10mbit   packet delayed, lost, queued (by named profile or parameters)
    relay:PROFILE            the same profiles on the stream relay, which holds TCP data
                             (loss as a one-RTT hold): for comparison
    idle-timeout:S           a load balancer's idle timeout: a connection with no bytes for
                             S seconds is closed (harness/measure/paths/intermediaries.py)
    cdn-buffer[:KIB]         a CDN that holds each response until KIB KiB or its end, unless
                             X-Accel-Buffering: no or Cache-Control: no-transform

The one place a layer kind is named is `LAYER_KINDS` below; the CLI, scenarios and results
read it. Metrics stay honest on every path: added delay is still client arrival minus
server emit on one host's clock; wire bytes are counted on the client's own sockets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from errors import ScenarioError

LOOPBACK = "loopback"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where clients connect, and what speaking to it takes."""

    base_url: str  # http://127.0.0.1:PORT, or https://... behind TLS
    http2: bool = False  # clients speak HTTP/2 (TLS with ALPN h2)
    ca_file: Path | None = None  # a certificate the clients must trust (self-signed, made at start)


class PathLayer(Protocol):
    """One layer of a path: started around a run, in front of `upstream`."""

    @property
    def name(self) -> str:
        """As written in the path, e.g. "nginx" or "net:rtt=40ms" (read-only: a frozen
        dataclass's field is a member)."""
        ...

    def parameters(self) -> dict[str, Any]:
        """What the results record of this layer (resolved profile figures, versions)."""
        ...

    def server_hosts(self) -> tuple[str, ...]:
        """The `Host` values (names, addresses, networks) clients may send through this
        layer besides loopback: the server is started with `--allowed-host` for each."""
        ...

    def open(
        self, upstream: Endpoint, work_dir: Path
    ) -> contextlib.AbstractContextManager[Endpoint]:
        """Start the layer in front of `upstream` (files under `work_dir`); yield the endpoint
        clients use; stop everything it started when the context exits."""
        ...


@dataclass(frozen=True, slots=True)
class Loopback:
    """Nothing between client and server."""

    name: str = LOOPBACK

    def parameters(self) -> dict[str, Any]:
        return {}

    def server_hosts(self) -> tuple[str, ...]:
        return ()

    @contextlib.contextmanager
    def open(self, upstream: Endpoint, work_dir: Path) -> Iterator[Endpoint]:
        yield upstream


def _loopback(argument: str) -> PathLayer:
    if argument:
        raise ScenarioError(f"path layer loopback takes no parameters, got {argument!r}")
    return Loopback()


def _lazy(module: str, factory: str) -> Callable[[str], PathLayer]:
    """A layer kind whose module is imported only when a path uses it."""

    def make(argument: str) -> PathLayer:
        import importlib

        layer: PathLayer = getattr(importlib.import_module(module), factory)(argument)
        return layer

    return make


PASSES, SPEAKS = "passes", "speaks"
ALL_HTTP = ("1.1", "2", "3")
TCP_HTTP = ("1.1", "2")


@dataclass(frozen=True, slots=True)
class LayerKind:
    """A kind of layer: how to make one from its argument, and what HTTP it lets its
    clients speak: a layer that `passes` bytes on (TCP, or TCP and UDP) keeps what is
    behind it, of `http`; one that `speaks` answers its clients itself, in `http`."""

    make: Callable[[str], PathLayer]
    how: str
    http: tuple[str, ...]


# The one place a layer kind is named: `kind` or `kind:argument` in a path.
LAYER_KINDS: dict[str, LayerKind] = {
    LOOPBACK: LayerKind(_loopback, PASSES, ALL_HTTP),
    "nginx": LayerKind(_lazy("harness.measure.paths.nginx", "nginx_layer"), SPEAKS, ("1.1",)),
    # HTTP/2 over TLS, or HTTP/1.1 (Debian's nginx has no QUIC)
    "nginx-h2": LayerKind(_lazy("harness.measure.paths.nginx", "nginx_h2_layer"), SPEAKS, TCP_HTTP),
    "nginx-gzip": LayerKind(
        _lazy("harness.measure.paths.nginx", "nginx_gzip_layer"), SPEAKS, ("1.1",)
    ),
    # packets: TCP and UDP (QUIC) alike
    "net": LayerKind(
        _lazy("harness.measure.paths.net.packet_layer", "packet_layer"), PASSES, ALL_HTTP
    ),
    # TCP streams only
    "relay": LayerKind(_lazy("harness.measure.paths.net.layer", "relay_layer"), PASSES, TCP_HTTP),
    "idle-timeout": LayerKind(
        _lazy("harness.measure.paths.intermediaries", "idle_timeout_layer"), PASSES, TCP_HTTP
    ),
    # reads HTTP/1.1 responses to hold them
    "cdn-buffer": LayerKind(
        _lazy("harness.measure.paths.intermediaries", "cdn_buffer_layer"), SPEAKS, ("1.1",)
    ),
}


@dataclass(frozen=True, slots=True)
class PathSpec:
    text: str
    layers: tuple[PathLayer, ...] = field(default_factory=tuple)

    def parameters(self) -> dict[str, Any]:
        return {layer.name: layer.parameters() for layer in self.layers}

    def http_versions(self, server: tuple[str, ...]) -> tuple[str, ...]:
        """The HTTP versions clients can speak through this path to a server that speaks
        `server` (each layer's `LayerKind.http`, from the server outward)."""
        versions = server
        for layer in self.layers:
            kind = LAYER_KINDS[layer.name.partition(":")[0]]
            passed = tuple(v for v in versions if v in kind.http)
            versions = passed if kind.how == PASSES else kind.http
        return versions

    def server_hosts(self) -> tuple[str, ...]:
        """Every layer's `server_hosts`, without repeats."""
        return tuple(dict.fromkeys(h for layer in self.layers for h in layer.server_hosts()))

    @contextlib.contextmanager
    def open(self, server: Endpoint, work_dir: Path) -> Iterator[Endpoint]:
        """Every layer, from the server outward; the clients' endpoint."""
        with contextlib.ExitStack() as stack:
            endpoint = server
            for k, layer in enumerate(self.layers):
                layer_dir = work_dir / f"path-{k}-{layer.name.split(':')[0]}"
                layer_dir.mkdir(parents=True, exist_ok=True)
                endpoint = stack.enter_context(layer.open(endpoint, layer_dir))
            yield endpoint


def split_paths(text: str) -> list[str]:
    """A comma list of paths into its paths. A comma inside a layer's parameters does not
    split (`net:rtt=80ms,bw=10mbit` is one path): an item `key=value` whose key names no
    layer continues the path before it."""
    paths: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        key = item.partition("=")[0]
        if paths and "=" in item and ":" not in key and "+" not in key:
            paths[-1] += "," + item
        elif item:
            paths.append(item)
    return paths


def parse_path(text: str) -> PathSpec:
    """`loopback`, `nginx`, `nginx-h2`, `net:PROFILE`, `net:k=v,...`, joined with `+`."""
    parts = [p.strip() for p in text.split("+")]
    if not text.strip() or any(not p for p in parts):
        raise ScenarioError(f"empty path layer in {text!r}; a path is e.g. nginx+net:4g")
    layers = []
    for part in parts:
        kind, _, argument = part.partition(":")
        known = LAYER_KINDS.get(kind)
        if known is None:
            raise ScenarioError(
                f"unknown path layer {kind!r} in {text!r}; allowed: {', '.join(LAYER_KINDS)} "
                "(joined with +, server side first: nginx+net:4g)"
            )
        layers.append(known.make(argument))
    if len(layers) > 1 and any(isinstance(layer, Loopback) for layer in layers):
        raise ScenarioError(f"loopback stands alone in a path, got {text!r}")
    return PathSpec(text=text, layers=tuple(layers))
