"""The `net:` path layer: the packet emulator (`emulator.py`) and, inside its namespace, the
relay with no impairment of its own (a splice to the upstream on loopback, whose listening
socket is the clients' far end). The clients' TCP connections cross the emulated link end to
end as packets: their handshakes, retransmissions, congestion control and head-of-line
blocking are the kernel's own. A TLS upstream is spliced as bytes: the clients' TLS ends at
nginx-h2, whose certificate names every address the emulator's far end may have. Records
what ran (`parameters()`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from errors import ServerStartError
from harness.measure.paths import Endpoint, PathLayer
from harness.measure.paths.net.emulator import PacketLink, packet_link
from harness.measure.paths.net.namespace import EMULATOR_SUBNET, ShapingUnavailable
from harness.measure.paths.net.relay_process import (
    RelayProcess,
    ReportingProcess,
    endpoint_via,
    final_stats,
    relay_command,
    relay_figures,
    start_relay,
    upstream_address,
)
from harness.measure.paths.net.spec import NetSpec, parse_network, spec_figures

KIND = "net"


class PacketLayer:
    """An emulated network of packets in front of `upstream`: see the package docstring."""

    def __init__(self, argument: str, spec: NetSpec, profile: str | None) -> None:
        self.name = f"{KIND}:{argument}"
        self.spec = spec
        self.profile = profile
        self.link: PacketLink | None = None
        self.relay: RelayProcess | None = None
        self.forwarder_stats: dict[str, Any] | None = None
        self.relay_stats: dict[str, Any] | None = None

    def parameters(self) -> dict[str, Any]:
        spec = self.spec
        figures: dict[str, Any] = {
            "emulator": "packet",
            **spec_figures(spec, self.profile, "packet"),
            "loss_model": (
                f"Gilbert-Elliott: bursts of {spec.burst:g} packets on average, per direction"
                if spec.burst > 1 and spec.loss > 0
                else "each packet dropped independently, per direction"
            ),
            "reorder_pct": round(spec.reorder * 100, 6),
            "duplicate_pct": round(spec.duplicate * 100, 6),
            "queue_ms": round(spec.queue_s * 1e3, 3) if spec.shaped else None,
            "handshake": "the kernel's own: SYN and SYN-ACK cross the link",
        }
        if self.link is not None:
            figures["namespace"] = asdict(self.link.namespace)
            figures["forwarder_pid"] = self.link.forwarder.pid
            stats = self.link.forwarder.stats()
            if stats is not None:
                self.forwarder_stats = stats
        running, stats = relay_figures(self.relay)
        figures.update(running)
        if stats is not None:
            self.relay_stats = stats
        if self.forwarder_stats is not None:
            figures["forwarder_stats"] = self.forwarder_stats
        if self.relay_stats is not None:
            figures["relay_stats"] = self.relay_stats
        return figures

    def server_hosts(self) -> tuple[str, ...]:
        """The clients name the namespace's address in Host."""
        return (str(EMULATOR_SUBNET),)

    @contextlib.contextmanager
    def open(self, upstream: Endpoint, work_dir: Path) -> Iterator[Endpoint]:
        _, host, port = upstream_address(upstream)
        work_dir = work_dir.resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            try:
                link = stack.enter_context(packet_link(self.spec, work_dir))
            except ShapingUnavailable as exc:
                raise ServerStartError(
                    f"path layer {self.name}: the packet emulator cannot run here: {exc}; "
                    "relay: emulates the same profiles without it"
                ) from None
            self.link = link
            stack.callback(self._stopped, "forwarder_stats", link.forwarder)
            splice = relay_command(NetSpec(), (host, port), work_dir / "relay-stats.json", False)
            splice.append("--udp")  # QUIC too: UDP to the upstream's port of the same number
            ns = link.namespace
            relay = start_relay(splice, work_dir, ns.ns_addr, ns)
            self.relay = relay
            stack.callback(self._stopped, "relay_stats", relay)
            yield endpoint_via(upstream, relay)

    def _stopped(self, attribute: str, process: ReportingProcess) -> None:
        stats = final_stats(process)
        if stats is not None:
            setattr(self, attribute, stats)


def packet_layer(argument: str) -> PathLayer:
    """`net:PROFILE` or `net:rtt=80ms,loss=2%,...`; ScenarioError naming the parameter."""
    spec, profile = parse_network(argument, KIND)
    return PacketLayer(argument, spec, profile)
