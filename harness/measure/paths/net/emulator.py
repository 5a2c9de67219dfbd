"""The packet emulator, the harness's side: a network namespace, the forwarder process
(`forwarder.py`) between a TUN device here and one inside it, and their addresses (a /30:
10.213.x.1 here, 10.213.x.2 inside); all gone when the context exits. Whatever is sent to
the inner address crosses the forwarder as IP packets, each way: TCP's own handshakes,
retransmissions and congestion control, and UDP, see the emulated link.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from errors import ServerStartError
from harness.measure.paths.net.link import LinkSpec, queue_bytes
from harness.measure.paths.net.namespace import (
    Namespace,
    ShapingUnavailable,
    address_lock,
    must,
    new_namespace,
    remove_namespace,
    shaping_unavailable,
)
from harness.measure.paths.net.relay_process import (
    READY_TIMEOUT_S,
    ReportingProcess,
    ready_line,
    spawn_helper,
    stop_relay,
)
from harness.measure.paths.net.spec import NetSpec

FORWARDER_MODULE = "harness.measure.paths.net.forwarder"  # run as `python -m`
TUN_DEVICE = Path("/dev/net/tun")


def emulator_unavailable() -> str | None:
    """Why the packet emulator cannot run here (None when it can)."""
    reason = shaping_unavailable(tools=("ip",))
    if reason is None and not TUN_DEVICE.exists():
        reason = f"{TUN_DEVICE} does not exist (the kernel's tun module)"
    return reason


def link_specs(spec: NetSpec) -> dict[str, LinkSpec]:
    """The forwarder's two directions: `up` towards the server (at `up_bps`), `down` towards
    the client (at `down_bps`), each with half the RTT, the jitter and the loss; their draws
    seeded apart."""

    def one(rate: float | None, seed: int) -> LinkSpec:
        return LinkSpec(
            delay_s=spec.delay_s,
            jitter_s=spec.jitter_s,
            rate_bps=rate,
            queue_bytes=queue_bytes(rate, spec.queue_s),
            loss=spec.loss,
            burst=spec.burst,
            reorder=spec.reorder,
            duplicate=spec.duplicate,
            seed=seed,
        )

    return {"up": one(spec.up_bps, 2 * spec.seed), "down": one(spec.down_bps, 2 * spec.seed + 1)}


@dataclass
class PacketLink:
    namespace: Namespace
    forwarder: ReportingProcess


def forwarder_command(ns: Namespace, spec: NetSpec, stats_path: Path) -> list[str]:
    specs = link_specs(spec)
    return [
        sys.executable,
        "-m",
        FORWARDER_MODULE,
        "--netns",
        str(ns.path),
        "--outer",
        ns.host_if,
        "--inner",
        ns.ns_if,
        "--up",
        _json(specs["up"]),
        "--down",
        _json(specs["down"]),
        "--stats",
        str(stats_path),
        "--parent-pid",
        str(os.getpid()),
    ]


def _json(link: LinkSpec) -> str:
    return json.dumps(asdict(link))


@contextlib.contextmanager
def packet_link(spec: NetSpec, work_dir: Path) -> Iterator[PacketLink]:
    """The namespace and the forwarder, addressed and up; ShapingUnavailable if a step the
    kernel refuses fails, ServerStartError if the forwarder does not start."""
    reason = emulator_unavailable()
    if reason is not None:
        raise ShapingUnavailable(reason)
    with contextlib.ExitStack() as stack:
        with address_lock():
            ns = new_namespace("tun")
            stack.callback(remove_namespace, ns)
            must("ip", "netns", "add", ns.name)
            must("ip", "-n", ns.name, "link", "set", "lo", "up")
            forwarder = _start_forwarder(
                forwarder_command(ns, spec, work_dir / "forwarder-stats.json"), work_dir
            )
            stack.callback(stop_relay, forwarder)
            _address(ns)
        yield PacketLink(ns, forwarder)


def _address(ns: Namespace) -> None:
    """Both ends' addresses, and the devices up. No IPv6 link-local address: no router
    solicitations or MLD reports cross the link."""
    inner = ("ip", "-n", ns.name)
    must("ip", "link", "set", ns.host_if, "addrgenmode", "none")
    must("ip", "addr", "add", ns.host_addr, "peer", ns.ns_addr, "dev", ns.host_if)
    must("ip", "link", "set", ns.host_if, "up")
    must(*inner, "link", "set", ns.ns_if, "addrgenmode", "none")
    must(*inner, "addr", "add", ns.ns_addr, "peer", ns.host_addr, "dev", ns.ns_if)
    must(*inner, "link", "set", ns.ns_if, "up")


def _start_forwarder(command: list[str], work_dir: Path) -> ReportingProcess:
    log_path = work_dir / "forwarder.log"
    stats_path = Path(command[command.index("--stats") + 1])
    process = spawn_helper(command, log_path)
    forwarder = ReportingProcess(process, stats_path, log_path)
    try:
        line = ready_line(process, READY_TIMEOUT_S)
    except BaseException:
        stop_relay(forwarder)
        raise
    if not line.startswith("ready "):
        stop_relay(forwarder)
        tail = log_path.read_text(errors="replace").strip().splitlines()
        why = (
            f"status {process.returncode}"
            if process.returncode is not None
            else (f"no `ready` within {READY_TIMEOUT_S:g} s")
        )
        raise ServerStartError(
            "the packet forwarder did not start" + (f": {tail[-1]}" if tail else f" ({why})")
        )
    return forwarder
