"""tbf shaping: a network namespace joined to the harness's by a veth pair, with the kernel's
token bucket filter (`tc qdisc ... tbf`) on each end, made with `ip` and `tc` and removed
when done. Needs root, `ip` and `tc` (`shaping_unavailable` says why not, before trying).

The relay's listening socket lives in the namespace, so the clients' bytes cross the veth:
shaped by tbf leaving the host side (towards the server, `up`) and leaving the namespace
(towards the client, `bw`). Namespaces are named `tokenwire-<pid>-<n>`, so ones left by a
killed harness are found and removed (`remove_stale_namespaces`).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

COMMAND_TIMEOUT_S = 10.0
NS_PREFIX = "tokenwire-"
NS_SUBNET = ipaddress.IPv4Network("10.213.0.0/16")  # /30 per namespace: 16,384 of them
# The packet emulator's: 64 /30s, few enough that a throwaway certificate can name every
# far-end address (nginx-h2's does, so `nginx-h2+net:...` verifies).
EMULATOR_SUBNET = ipaddress.IPv4Network("10.214.0.0/24")


class ShapingUnavailable(RuntimeError):
    """A namespace cannot be made here (for tbf shaping or the packet emulator); the
    message says why."""


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    host_if: str
    ns_if: str
    host_addr: str
    ns_addr: str

    @property
    def path(self) -> Path:
        return Path("/run/netns") / self.name


_counter = itertools.count()


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )


def must(*command: str) -> None:
    """Run an `ip` or `tc` command; ShapingUnavailable with its last line of error if it
    fails."""
    done = _run(*command)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ShapingUnavailable(
            f"`{' '.join(command)}` failed: {detail[-1] if detail else done.returncode}"
        )


def shaping_unavailable(tools: tuple[str, ...] = ("ip", "tc")) -> str | None:
    """Why tbf shaping (or, with `tools` ("ip",), the packet emulator) cannot be tried here
    (None when it can)."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    if os.geteuid() != 0:
        return "not root (network namespaces need CAP_NET_ADMIN)"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (iproute2)"
    return None


def remove_stale_namespaces() -> list[str]:
    """Namespaces this code made in processes that have since died (killed before they could
    clean up); removes them and returns their names."""
    listed = _run("ip", "netns", "list")
    removed = []
    for line in listed.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(re.escape(NS_PREFIX) + r"(\d+)-\d+", name)
        if match and not psutil.pid_exists(int(match[1])):
            _run("ip", "netns", "del", name)
            removed.append(name)
    return removed


def emulator_addresses() -> list[str]:
    """Every address a packet emulator's far end may have."""
    return [str(net[2]) for net in EMULATOR_SUBNET.subnets(new_prefix=30)]


def _free_subnet(start: int, pool: ipaddress.IPv4Network = NS_SUBNET) -> ipaddress.IPv4Network:
    used = _run("ip", "-4", "-o", "addr", "show").stdout
    subnets = list(pool.subnets(new_prefix=30))
    for k in range(min(64, len(subnets))):
        net = subnets[(start + k) % len(subnets)]
        if not any(f" {a}{end}" in used for a in (net[1], net[2]) for end in "/ "):
            return net
    raise ShapingUnavailable(f"no free /30 in {pool}")


def _tbf(rate_bps: float) -> list[str]:
    """tbf arguments: a burst of 5 ms at the rate (at least two 1514-byte frames; larger GSO
    packets are segmented by tbf), and up to 500 ms of queue."""
    rate_bytes = rate_bps / 8
    burst = max(2 * 1514, int(rate_bytes * 0.005))
    limit = max(4 * burst, int(rate_bytes * 0.5))
    return ["tbf", "rate", f"{int(rate_bps)}bit", "burst", str(burst), "limit", str(limit)]


LOCK_FILE = Path("/run/tokenwire-netns.lock")


@contextlib.contextmanager
def address_lock() -> Iterator[None]:
    """Held from choosing a free /30 until its addresses are on their devices, so two
    harnesses on one machine cannot choose the same one."""
    with open(LOCK_FILE, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def new_namespace(kind: str) -> Namespace:
    """Names and a free /30 for a namespace about to be made (stale ones removed first):
    `kind` names its devices' pair ("veth" or "tun")."""
    remove_stale_namespaces()
    pid, k = os.getpid(), next(_counter)
    pool = EMULATOR_SUBNET if kind == "tun" else NS_SUBNET
    net = _free_subnet(pid * 7919 + k * 31, pool)  # a spread start; `address_lock` decides
    letters = {"veth": ("h", "n"), "tun": ("t", "u")}[kind]
    return Namespace(
        name=f"{NS_PREFIX}{pid}-{k}",
        host_if=f"tw{pid:x}{letters[0]}{k % 100}",
        ns_if=f"tw{pid:x}{letters[1]}{k % 100}",
        host_addr=str(net[1]),
        ns_addr=str(net[2]),
    )


@contextlib.contextmanager
def shaped_namespace(down_bps: float | None, up_bps: float | None) -> Iterator[Namespace]:
    """A fresh network namespace joined to this one by a veth pair, with tbf on each end;
    removed (with the pair) when the context exits. ShapingUnavailable if any step fails."""
    reason = shaping_unavailable()
    if reason is not None:
        raise ShapingUnavailable(reason)
    ns = new_namespace("veth")
    try:
        must("ip", "netns", "add", ns.name)
        must("ip", "link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if)
        must("ip", "link", "set", ns.ns_if, "netns", ns.name)
        must("ip", "addr", "add", f"{ns.host_addr}/30", "dev", ns.host_if)
        must("ip", "link", "set", ns.host_if, "up")
        must("ip", "-n", ns.name, "addr", "add", f"{ns.ns_addr}/30", "dev", ns.ns_if)
        must("ip", "-n", ns.name, "link", "set", ns.ns_if, "up")
        must("ip", "-n", ns.name, "link", "set", "lo", "up")
        if up_bps is not None:  # leaving the host side: client to server
            must("tc", "qdisc", "add", "dev", ns.host_if, "root", *_tbf(up_bps))
        if down_bps is not None:  # leaving the namespace: server to client
            must("tc", "-n", ns.name, "qdisc", "add", "dev", ns.ns_if, "root", *_tbf(down_bps))
        if not ns.path.exists():
            raise ShapingUnavailable(f"{ns.path} does not exist after `ip netns add`")
    except BaseException:
        remove_namespace(ns)
        raise
    try:
        yield ns
    finally:
        remove_namespace(ns)


def remove_namespace(ns: Namespace) -> None:
    """Delete the namespace (its veth end, and so the pair, goes with it) and the host end."""
    _run("ip", "link", "del", ns.host_if)
    _run("ip", "netns", "del", ns.name)


def namespace_exists(name: str) -> bool:
    return any(
        line.split()[:1] == [name] for line in _run("ip", "netns", "list").stdout.splitlines()
    )
