"""`net:PROFILE` and `net:rtt=80ms,jitter=5ms,bw=10mbit,loss=0.5%`: an emulated network.

This kernel has no `netem` qdisc, so delay, jitter and loss come from a userspace TCP relay
(`harness/measure/paths/relay.py`, a separate process started by `open()` and stopped by
its PID): every chunk it reads is held for the one-way delay (plus jitter) before it is
written on, in order, in each direction, so a request round trip costs the full RTT. Loss
is modelled as what TCP makes of it: with probability `loss` a chunk is held one extra RTT
(a retransmission); nothing is dropped. A new connection's first request waits one RTT (the
handshake loopback does not charge). The relay's docstring has the model in full.

Bandwidth is shaped by one of two, recorded as `shaper` in `parameters()`:

- `tbf`: the kernel's token bucket filter on a veth pair between the harness's namespace
  and a network namespace this layer creates (and removes) for the run. The relay's
  listening socket lives in that namespace, so clients connect to its address
  (10.213.x.y), their bytes cross the veth (shaped by `tbf` on each end: `up` leaving the
  host side, `bw` leaving the namespace) and the relay then forwards them to the server on
  loopback. Needs root, `ip` and `tc`; chosen by `shaper=auto` (the default) when they work
  and the upstream speaks plain HTTP (a TLS upstream's certificate names 127.0.0.1).
- `relay`: a token bucket per direction inside the relay, shared by all connections, with
  the relay listening on loopback. The fallback, or asked for with `shaper=relay`.

Without `bw` nothing shapes (`shaper: none`) and the relay listens on loopback.

Parameters (`net:PROFILE`, `net:k=v,...`, or a profile then overrides: `net:4g,loss=1%`):

    rtt      round-trip time, split evenly between the directions   ms or s     e.g. 80ms
    jitter   per direction, uniform in [-jitter, +jitter]            ms or s     <= rtt/2
    bw       bandwidth both ways (towards the client when up is set) kbit/mbit/gbit
    up       bandwidth towards the server                            kbit/mbit/gbit
    loss     probability that a chunk is held one extra RTT          %           < 100%
    shaper   auto | relay | tbf                                      (with bw)
    seed     the jitter and loss draws                               an integer

Metrics stay honest: added delay is still client arrival minus server emit on one clock, so
it grows by the one-way delay; wire bytes are counted on the clients' own sockets.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil

from errors import ScenarioError, ServerStartError
from harness.measure.paths import Endpoint, PathLayer
from harness.measure.server_process import (
    PROJECT_ROOT,
    ChildProcess,
    bind_listener,
    stop_process,
)

KIND = "net"
SHAPERS = ("auto", "relay", "tbf")
PARAMETERS = ("rtt", "jitter", "bw", "up", "loss", "shaper", "seed")
MAX_TIME_S = 60.0  # rtt and jitter beyond a minute are typos
MIN_BPS = 1_000  # 1 kbit/s
MAX_BPS = 100_000_000_000  # 100 gbit/s
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
STATS_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 10.0
NS_PREFIX = "tokenwire-"
NS_SUBNET = ipaddress.ip_network("10.213.0.0/16")  # /30 per namespace: 16,384 of them
NS_PORT = 8000  # the relay's port inside its own namespace (nothing else listens there)

_TIME = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(kbit|mbit|gbit)$")
_LOSS = re.compile(r"^(\d+(?:\.\d+)?)%$")
_RATE_UNITS = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}


@dataclass(frozen=True, slots=True)
class NetSpec:
    """Resolved figures: seconds, bits per second (None: no limit), a probability."""

    rtt_s: float = 0.0
    jitter_s: float = 0.0
    down_bps: float | None = None  # towards the client
    up_bps: float | None = None  # towards the server
    loss: float = 0.0
    shaper: str = "auto"
    seed: int = 1

    @property
    def delay_s(self) -> float:
        return self.rtt_s / 2

    @property
    def shaped(self) -> bool:
        return self.down_bps is not None or self.up_bps is not None


@dataclass(frozen=True, slots=True)
class Profile:
    spec: NetSpec
    source: str


def _mbit(value: float) -> float:
    return value * 1e6


# Named profiles. Each figure's source is in its comment and in `source`, which the results
# record. DevTools' presets give a "target" (packet-level) RTT and a per-request latency
# scaled up from it; a relay that holds every packet's worth of data wants the target RTT.
PROFILES: dict[str, Profile] = {
    # A switched Ethernet LAN. No emulation preset to cite: the 1 Gbit/s is 1000BASE-T's
    # line rate (IEEE 802.3ab); the 0.5 ms round trip is our own round figure for one
    # switched segment (hosts on one switch usually ping in 0.1 to 0.5 ms).
    "lan": Profile(
        NetSpec(rtt_s=0.0005, down_bps=1e9, up_bps=1e9),
        "bandwidth: 1000BASE-T line rate (IEEE 802.3ab); rtt 0.5 ms: our round figure for "
        "one switched Ethernet segment, not from a measurement report",
    ),
    # Wi-Fi. Bandwidth: the "WiFi" preset of WebdriverIO's throttleNetwork
    # (packages/webdriverio/src/commands/browser/throttleNetwork.ts: 30 Mbit/s down,
    # 15 Mbit/s up, in 1024-based units; the preset list older Chrome DevTools shipped).
    # RTT: Sui et al., "WiFi can be the weakest link of round trip network latency in the
    # wild", IEEE INFOCOM 2016: on 47 campus APs over two months more than half of TCP
    # packets saw a WiFi-hop latency above 20 ms. The 5 ms jitter is our assumption (Wi-Fi
    # latency varies, the sources give no figure that fits a uniform jitter).
    "wifi": Profile(
        NetSpec(rtt_s=0.020, jitter_s=0.005, down_bps=30 * 1024 * 1024, up_bps=15 * 1024 * 1024),
        "bandwidth: WebdriverIO throttleNetwork 'WiFi' preset (30/15 Mbit/s, 1024-based); "
        "rtt 20 ms: Sui et al., 'WiFi can be the weakest link of round trip network latency "
        "in the wild', IEEE INFOCOM 2016 (median WiFi-hop latency above 20 ms); jitter 5 ms: "
        "our assumption",
    ),
    # 4G: Chrome DevTools' "Fast 4G" preset (devtools-frontend,
    # front_end/core/sdk/NetworkManager.ts, Fast4GConditions): 9 Mbit/s x 0.9 down,
    # 1.5 Mbit/s x 0.9 up, 60 ms target RTT. No jitter or loss in the preset.
    "4g": Profile(
        NetSpec(rtt_s=0.060, down_bps=_mbit(9) * 0.9, up_bps=_mbit(1.5) * 0.9),
        "Chrome DevTools 'Fast 4G' preset (devtools-frontend front_end/core/sdk/"
        "NetworkManager.ts): 9 Mbit/s x 0.9 down, 1.5 Mbit/s x 0.9 up, 60 ms target RTT",
    ),
    # 3G: Chrome DevTools' "3G" preset (called "Slow 3G" until 2024; same file,
    # Slow3GConditions): 500 kbit/s x 0.8 both ways, 400 ms target RTT.
    "3g": Profile(
        NetSpec(rtt_s=0.400, down_bps=500e3 * 0.8, up_bps=500e3 * 0.8),
        "Chrome DevTools '3G' preset, formerly 'Slow 3G' (devtools-frontend front_end/core/"
        "sdk/NetworkManager.ts): 500 kbit/s x 0.8 both ways, 400 ms target RTT",
    ),
    # Across an ocean and a continent: WonderProxy's "Miles per Millisecond" (2011) ping
    # table between its servers gives Paris <-> Fremont, California 175.19 and 176.22 ms.
    # No bandwidth limit: a long path's capacity is rarely what limits one stream (add
    # bw=... for the access link).
    "intercontinental": Profile(
        NetSpec(rtt_s=0.175),
        "WonderProxy, 'Miles per Millisecond' (2011) ping table: Paris <-> Fremont, "
        "California 175.19 / 176.22 ms; no bandwidth limit",
    ),
}


# --- parsing ------------------------------------------------------------------------------


def _err(message: str) -> ScenarioError:
    return ScenarioError(f"path layer net: {message}")


def parse_time(name: str, text: str) -> float:
    """`80ms`, `0.08s` or `0` into seconds."""
    if text == "0":
        return 0.0
    match = _TIME.match(text)
    if match is None:
        raise _err(f"{name}={text!r} is not a time; allowed: a number with ms or s (e.g. 80ms)")
    seconds = float(match[1]) / (1e3 if match[2] == "ms" else 1.0)
    if seconds > MAX_TIME_S:
        raise _err(f"{name}={text} is beyond {MAX_TIME_S:g} s; allowed: 0 to {MAX_TIME_S:g}s")
    return seconds


def parse_rate(name: str, text: str) -> float:
    """`500kbit`, `10mbit`, `1gbit` into bits per second."""
    match = _RATE.match(text)
    if match is None:
        raise _err(
            f"{name}={text!r} is not a bandwidth; allowed: a number with kbit, mbit or gbit "
            "(e.g. 10mbit); leave it out for no limit"
        )
    bps = float(match[1]) * _RATE_UNITS[match[2]]
    if not MIN_BPS <= bps <= MAX_BPS:
        raise _err(f"{name}={text} is out of range; allowed: 1kbit to 100gbit")
    return bps


def parse_loss(text: str) -> float:
    """`0.5%` (or `0`) into a probability."""
    if text == "0":
        return 0.0
    match = _LOSS.match(text)
    if match is None:
        raise _err(f"loss={text!r} is not a percentage; allowed: 0% to below 100% (e.g. 0.5%)")
    percent = float(match[1])
    if percent >= 100:
        raise _err(f"loss={text} is not below 100%; allowed: 0% to below 100%")
    return percent / 100


def _profiles_text() -> str:
    return ", ".join(PROFILES)


def parse_network(argument: str) -> tuple[NetSpec, str | None]:
    """The resolved figures and the profile named (if any) in `net:ARGUMENT`."""
    items = [item.strip() for item in argument.split(",")]
    if not argument.strip() or any(not item for item in items):
        what = "nothing after net:" if not argument.strip() else f"an empty item in net:{argument}"
        raise _err(
            f"{what}; allowed: a profile ({_profiles_text()}) and/or parameters, "
            "e.g. net:rtt=80ms,bw=10mbit"
        )
    profile_name: str | None = None
    spec = NetSpec()
    if "=" not in items[0]:
        profile_name = items.pop(0).lower()
        if profile_name not in PROFILES:
            raise _err(f"unknown profile {profile_name!r}; allowed: {_profiles_text()}")
        spec = PROFILES[profile_name].spec
    seen: set[str] = set()
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if not sep:
            raise _err(
                f"{item!r} is not key=value; allowed: one profile first ({_profiles_text()}), "
                f"then key=value with keys {', '.join(PARAMETERS)}"
            )
        if key not in PARAMETERS:
            raise _err(f"unknown parameter {key!r}; allowed: {', '.join(PARAMETERS)}")
        if key in seen:
            raise _err(f"parameter {key} is given twice; allowed: each parameter once")
        seen.add(key)
        if key in ("rtt", "jitter"):
            values[f"{key}_s"] = parse_time(key, value)
        elif key == "bw":
            values["down_bps"] = parse_rate(key, value)
        elif key == "up":
            values["up_bps"] = parse_rate(key, value)
        elif key == "loss":
            values["loss"] = parse_loss(value)
        elif key == "shaper":
            if value not in SHAPERS:
                raise _err(f"shaper={value!r} is unknown; allowed: {', '.join(SHAPERS)}")
            values["shaper"] = value
        else:  # seed
            if not re.fullmatch(r"\d{1,9}", value):
                raise _err(f"seed={value!r} is not an integer; allowed: 0 to 999999999")
            values["seed"] = int(value)
    if "down_bps" in values and "up_bps" not in values:
        values["up_bps"] = values["down_bps"]  # bw alone: both ways
    if "up_bps" in values and "down_bps" not in values and not spec.shaped:
        raise _err(
            "up= needs bw= (the bandwidth towards the client) or a profile with one; "
            "allowed: bw=... alone, or bw=... with up=..."
        )
    spec = replace(spec, **values)
    if spec.jitter_s > spec.delay_s + 1e-12:
        raise _err(
            f"jitter={spec.jitter_s * 1e3:g}ms exceeds the one-way delay "
            f"({spec.delay_s * 1e3:g}ms, half of rtt); allowed: 0 to rtt/2"
        )
    if spec.loss > 0 and spec.rtt_s == 0:
        raise _err(
            "loss needs rtt > 0 (a lost chunk costs one extra RTT here); allowed: loss with rtt"
        )
    if spec.shaper == "tbf" and not spec.shaped:
        raise _err("shaper=tbf needs bw= (there is no bandwidth to shape); allowed: with bw")
    return spec, profile_name


# --- namespace and tbf ----------------------------------------------------------------------


class ShapingUnavailable(RuntimeError):
    """tbf shaping cannot run here; the message says why."""


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


def _must(*command: str) -> None:
    done = _run(*command)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ShapingUnavailable(
            f"`{' '.join(command)}` failed: {detail[-1] if detail else done.returncode}"
        )


def shaping_unavailable() -> str | None:
    """Why tbf shaping cannot be tried here (None when it can)."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    if os.geteuid() != 0:
        return "not root (network namespaces and tc need CAP_NET_ADMIN)"
    for tool in ("ip", "tc"):
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


def _free_subnet(start: int) -> ipaddress.IPv4Network:
    used = _run("ip", "-4", "-o", "addr", "show").stdout
    subnets = list(NS_SUBNET.subnets(new_prefix=30))
    for k in range(64):
        net = subnets[(start + k) % len(subnets)]
        if f" {net[1]}/" not in used and f" {net[2]}/" not in used:
            return net
    raise ShapingUnavailable(f"no free /30 in {NS_SUBNET}")


def _tbf(rate_bps: float) -> list[str]:
    """tbf arguments: a burst of 5 ms at the rate (at least two 1514-byte frames; larger GSO
    packets are segmented by tbf), and up to 500 ms of queue."""
    rate_bytes = rate_bps / 8
    burst = max(2 * 1514, int(rate_bytes * 0.005))
    limit = max(4 * burst, int(rate_bytes * 0.5))
    return ["tbf", "rate", f"{int(rate_bps)}bit", "burst", str(burst), "limit", str(limit)]


@contextlib.contextmanager
def shaped_namespace(down_bps: float | None, up_bps: float | None) -> Iterator[Namespace]:
    """A fresh network namespace joined to this one by a veth pair, with tbf on each end;
    removed (with the pair) when the context exits. ShapingUnavailable if any step fails."""
    reason = shaping_unavailable()
    if reason is not None:
        raise ShapingUnavailable(reason)
    remove_stale_namespaces()
    pid, k = os.getpid(), next(_counter)
    net = _free_subnet((pid * 16 + k) % 16384)
    ns = Namespace(
        name=f"{NS_PREFIX}{pid}-{k}",
        host_if=f"tw{pid:x}h{k % 100}",
        ns_if=f"tw{pid:x}n{k % 100}",
        host_addr=str(net[1]),
        ns_addr=str(net[2]),
    )
    try:
        _must("ip", "netns", "add", ns.name)
        _must("ip", "link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if)
        _must("ip", "link", "set", ns.ns_if, "netns", ns.name)
        _must("ip", "addr", "add", f"{ns.host_addr}/30", "dev", ns.host_if)
        _must("ip", "link", "set", ns.host_if, "up")
        _must("ip", "-n", ns.name, "addr", "add", f"{ns.ns_addr}/30", "dev", ns.ns_if)
        _must("ip", "-n", ns.name, "link", "set", ns.ns_if, "up")
        _must("ip", "-n", ns.name, "link", "set", "lo", "up")
        if up_bps is not None:  # leaving the host side: client to server
            _must("tc", "qdisc", "add", "dev", ns.host_if, "root", *_tbf(up_bps))
        if down_bps is not None:  # leaving the namespace: server to client
            _must("tc", "-n", ns.name, "qdisc", "add", "dev", ns.ns_if, "root", *_tbf(down_bps))
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


# --- the relay process ----------------------------------------------------------------------


@dataclass
class RelayProcess(ChildProcess):
    process: subprocess.Popen[str]
    host: str
    port: int
    stats_path: Path
    log_path: Path

    def stats(self, timeout_s: float = STATS_TIMEOUT_S) -> dict[str, Any] | None:
        """The relay's own statistics: asked for with SIGUSR1 while it runs."""
        if self.process.poll() is None:
            before = _mtime(self.stats_path)
            self.process.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + timeout_s
            while _mtime(self.stats_path) == before and time.monotonic() < deadline:
                time.sleep(0.01)
        try:
            return json.loads(self.stats_path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def upstream_address(upstream: Endpoint) -> tuple[str, str, int]:
    """(scheme, host, port) of what the relay forwards to."""
    parts = urlsplit(upstream.base_url)
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        raise ScenarioError(f"path layer net cannot relay to {upstream.base_url!r}")
    return parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def relay_command(
    spec: NetSpec, upstream: tuple[str, int], stats_path: Path, bucket: bool
) -> list[str]:
    host, port = upstream
    command = [
        sys.executable,
        "-m",
        "harness.measure.paths.relay",
        "--upstream",
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "--delay-ms",
        repr(spec.delay_s * 1e3),
        "--rtt-ms",
        repr(spec.rtt_s * 1e3),
        "--jitter-ms",
        repr(spec.jitter_s * 1e3),
        "--loss",
        repr(spec.loss),
        "--seed",
        str(spec.seed),
        "--stats",
        str(stats_path),
        "--parent-pid",
        str(os.getpid()),
    ]
    if bucket:
        command += ["--down-bps", repr(spec.down_bps or 0.0), "--up-bps", repr(spec.up_bps or 0.0)]
    return command


def start_relay(
    command: list[str],
    work_dir: Path,
    listen_host: str,
    netns: Namespace | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> RelayProcess:
    """The relay on a free port (a loopback socket bound here and inherited, or a fixed port
    in its own namespace), once it says it is ready; ServerStartError if it does not."""
    log_path = work_dir / "relay.log"
    stats_path = work_dir / "relay-stats.json"
    command = [*command]
    command[command.index("--stats") + 1] = str(stats_path)
    sock = None
    pass_fds: tuple[int, ...] = ()
    if netns is None:
        sock = bind_listener(listen_host, 0)
        command += ["--listen-fd", str(sock.fileno())]
        pass_fds = (sock.fileno(),)
    else:
        command += ["--listen", f"{listen_host}:{NS_PORT}", "--netns", str(netns.path)]
    with contextlib.ExitStack() as stack:
        if sock is not None:
            stack.enter_context(sock)
        log = stack.enter_context(open(log_path, "ab"))
        process = subprocess.Popen(
            command,
            pass_fds=pass_fds,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # a Ctrl-C in the terminal goes to the harness only
        )
    relay = RelayProcess(process, listen_host, 0, stats_path, log_path)
    try:
        line = _ready_line(process, timeout_s)
    except BaseException:
        stop_relay(relay)
        raise
    fields = line.split()
    if len(fields) != 3 or fields[0] != "ready":
        stop_relay(relay)
        tail = log_path.read_text(errors="replace").strip().splitlines()
        raise ServerStartError(
            "the network relay did not start"
            + (f": {tail[-1]}" if tail else f" (status {process.returncode})")
        )
    relay.port = int(fields[2])
    return relay


def _ready_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    if not ready:
        return ""
    return process.stdout.readline()


def stop_relay(relay: RelayProcess, grace_s: float = STOP_TIMEOUT_S) -> None:
    """Stop the relay we started, by its PID: SIGTERM, then SIGKILL after `grace_s`."""
    stop_process(relay.process, grace_s)
    if relay.process.stdout is not None:
        relay.process.stdout.close()


# --- the layer ------------------------------------------------------------------------------


def _kbit(bps: float | None) -> float | None:
    return None if bps is None else round(bps / 1e3, 3)


class NetworkLayer:
    """An emulated network in front of `upstream`: see the module docstring."""

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
            "profile": self.profile,
            "source": PROFILES[self.profile].source if self.profile else "given parameters",
            "rtt_ms": round(spec.rtt_s * 1e3, 4),
            "one_way_delay_ms": round(spec.delay_s * 1e3, 4),
            "jitter_ms": round(spec.jitter_s * 1e3, 4),
            "jitter_model": "uniform in [-jitter, +jitter] per chunk and direction, in order",
            "loss_pct": round(spec.loss * 100, 6),
            "loss_model": "a chunk held one extra RTT (a retransmission); nothing dropped",
            "bw_down_kbit": _kbit(spec.down_bps),
            "bw_up_kbit": _kbit(spec.up_bps),
            "bandwidth_scope": (
                "one link per direction, shared by all connections" if spec.shaped else None
            ),
            "handshake": "a new connection's first request waits one RTT",
            "seed": spec.seed,
            "shaper_requested": spec.shaper if spec.shaped else None,
            "shaper": self.shaper,
            "shaper_note": self.shaper_note,
        }
        if self.relay is not None:
            figures["relay_pid"] = self.relay.pid
            figures["relay_listen"] = f"{self.relay.host}:{self.relay.port}"
            stats = self.relay.stats()
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
            netloc = (
                f"[{relay.host}]:{relay.port}"
                if ":" in relay.host
                else f"{relay.host}:{relay.port}"
            )
            parts = urlsplit(upstream.base_url)
            yield Endpoint(
                urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
                http2=upstream.http2,
                ca_file=upstream.ca_file,
            )

    def _stopped(self, relay: RelayProcess) -> None:
        stop_relay(relay)
        with contextlib.suppress(OSError, ValueError):
            self.relay_stats = json.loads(relay.stats_path.read_text(encoding="utf-8"))


def _loopback_like(upstream_host: str) -> str:
    """The relay listens on the loopback address of the upstream's family."""
    return "::1" if ":" in upstream_host else "127.0.0.1"


def network_layer(argument: str) -> PathLayer:
    """`net:PROFILE` or `net:rtt=80ms,...`; ScenarioError naming the parameter when bad."""
    spec, profile = parse_network(argument)
    return NetworkLayer(argument, spec, profile)


def profile_table() -> list[dict[str, Any]]:
    """Every named profile's resolved figures and source (for docs and reports)."""
    rows = []
    for name, profile in PROFILES.items():
        spec = profile.spec
        rows.append(
            {
                "profile": name,
                "rtt_ms": spec.rtt_s * 1e3,
                "jitter_ms": spec.jitter_s * 1e3,
                "bw_down_kbit": _kbit(spec.down_bps),
                "bw_up_kbit": _kbit(spec.up_bps),
                "loss_pct": spec.loss * 100,
                "source": profile.source,
            }
        )
    return rows


__all__ = [
    "PROFILES",
    "NetSpec",
    "NetworkLayer",
    "network_layer",
    "parse_network",
    "profile_table",
]
