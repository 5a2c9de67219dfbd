"""The `relay:` path layer (the stream relay; `net:` is the packet emulator,
`packet_layer.py`): chooses the shaper, opens the namespace (tbf) and starts the relay in
front of the upstream, and records what ran (`parameters()`). The package docstring
describes both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from errors import ServerStartError
from harness.measure.paths import Endpoint, PathLayer
from harness.measure.paths.net.namespace import (
    NS_SUBNET,
    Namespace,
    ShapingUnavailable,
    shaped_namespace,
    shaping_unavailable,
)
from harness.measure.paths.net.relay_process import (
    RelayProcess,
    endpoint_via,
    final_stats,
    relay_command,
    relay_figures,
    start_relay,
    upstream_address,
)
from harness.measure.paths.net.spec import NetSpec, parse_network, spec_figures

KIND = "relay"


class NetworkLayer:
    """The stream relay in front of `upstream`: see the package docstring."""

    def __init__(self, argument: str, spec: NetSpec, profile: str | None) -> None:
        self.name = f"{KIND}:{argument}"
        self.spec = spec
        self.profile = profile
        self.shaper: str | None = None  # what ran: tbf, relay or none
        self.shaper_note: str | None = None
        self.relay: RelayProcess | None = None
        self.namespace: Namespace | None = None
        self.relay_stats: dict[str, Any] | None = None

    def parameters(self) -> dict[str, Any]:
        spec = self.spec
        figures: dict[str, Any] = {
            **spec_figures(spec, self.profile, "chunk"),
            "loss_model": "a chunk held one extra RTT (a retransmission); nothing dropped",
            "handshake": "a new connection's first request waits one RTT",
            "shaper_requested": spec.shaper if spec.shaped else None,
            "shaper": self.shaper,
            "shaper_note": self.shaper_note,
        }
        running, stats = relay_figures(self.relay)
        figures.update(running)
        if stats is not None:
            self.relay_stats = stats
        if self.namespace is not None:
            figures["namespace"] = asdict(self.namespace)
        if self.relay_stats is not None:
            figures["relay_stats"] = self.relay_stats
        return figures

    def server_hosts(self) -> tuple[str, ...]:
        """The namespaces' addresses when tbf may shape: the relay listens inside one, and
        the clients name that address in Host; otherwise it listens on loopback."""
        may_use_namespace = self.spec.shaped and self.spec.shaper != "relay"
        return (str(NS_SUBNET),) if may_use_namespace else ()

    def _choose_shaper(self, scheme: str) -> str:
        spec = self.spec
        if not spec.shaped:
            return "none"
        if spec.shaper == "relay":
            return "relay"
        reason = shaping_unavailable()
        if reason is None and scheme == "https":
            reason = "the upstream speaks TLS for 127.0.0.1; a namespace address would not match"
        if reason is not None:
            if spec.shaper == "tbf":
                raise ServerStartError(f"path layer {self.name}: tbf shaping unavailable: {reason}")
            self.shaper_note = f"tbf unavailable ({reason}); the relay's token buckets shape"
            return "relay"
        return "tbf"

    @contextlib.contextmanager
    def open(self, upstream: Endpoint, work_dir: Path) -> Iterator[Endpoint]:
        scheme, host, port = upstream_address(upstream)
        work_dir = work_dir.resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        shaper = self._choose_shaper(scheme)
        with contextlib.ExitStack() as stack:
            namespace = None
            if shaper == "tbf":
                try:
                    namespace = stack.enter_context(
                        shaped_namespace(self.spec.down_bps, self.spec.up_bps)
                    )
                except ShapingUnavailable as exc:
                    if self.spec.shaper == "tbf":
                        raise ServerStartError(
                            f"path layer {self.name}: tbf shaping failed: {exc}"
                        ) from None
                    self.shaper_note = f"tbf failed ({exc}); the relay's token buckets shape"
                    shaper = "relay"
            self.shaper = shaper
            self.namespace = namespace
            command = relay_command(
                self.spec, (host, port), work_dir / "relay-stats.json", bucket=shaper == "relay"
            )
            listen_host = namespace.ns_addr if namespace is not None else _loopback_like(host)
            relay = start_relay(command, work_dir, listen_host, namespace)
            self.relay = relay
            stack.callback(self._stopped, relay)
            yield endpoint_via(upstream, relay)

    def _stopped(self, relay: RelayProcess) -> None:
        self.relay_stats = final_stats(relay) or self.relay_stats


def _loopback_like(upstream_host: str) -> str:
    """The relay listens on the loopback address of the upstream's family."""
    return "::1" if ":" in upstream_host else "127.0.0.1"


def relay_layer(argument: str) -> PathLayer:
    """`relay:PROFILE` or `relay:rtt=80ms,...`; ScenarioError naming the parameter when bad."""
    spec, profile = parse_network(argument, KIND)
    return NetworkLayer(argument, spec, profile)
