"""`net:` and `relay:` arguments: named profiles (each with its source) and parameters,
resolved into a `NetSpec` of seconds, bits per second and probabilities. Pure: no I/O.

    net:PROFILE                   lan, wifi, 4g, 3g, intercontinental
    net:rtt=80ms,bw=10mbit,...    the parameters (the package docstring lists them)
    net:4g,loss=1%                a profile, then overrides
    relay:4g                      the same profiles and most parameters, on the stream relay

A bad argument is a one-line ScenarioError naming the parameter and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from errors import ScenarioError

SHAPERS = ("auto", "relay", "tbf")
# The parameters each kind takes: `net:` the packet emulator, `relay:` the stream relay.
PARAMETERS = {
    "net": ("rtt", "jitter", "bw", "up", "loss", "burst", "reorder", "dup", "queue", "seed"),
    "relay": ("rtt", "jitter", "bw", "up", "loss", "shaper", "seed"),
}
DEFAULT_QUEUE_S = 0.5  # the packet emulator's queue at the rate, as the relay's tbf had
MAX_BURST = 1000.0  # packets in a mean loss burst
MAX_TIME_S = 60.0  # rtt and jitter beyond a minute are typos
MIN_BPS = 1_000  # 1 kbit/s
MAX_BPS = 100_000_000_000  # 100 gbit/s

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
    burst: float = 1.0  # mean lost packets per loss burst (net: only; 1: independent loss)
    reorder: float = 0.0  # probability a packet overtakes those in flight (net: only)
    duplicate: float = 0.0  # probability a packet arrives twice (net: only)
    queue_s: float = DEFAULT_QUEUE_S  # the rate queue, in time at the rate (net: only)
    idle_s: float = 0.0  # the `idle-timeout:S` layer: close a connection idle this long
    hold_kib: float = 0.0  # the `cdn-buffer` layer: hold responses (net/holding.py)

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


def _err(message: str, kind: str = "net") -> ScenarioError:
    return ScenarioError(f"path layer {kind}: {message}")


def parse_time(name: str, text: str, kind: str = "net") -> float:
    """`80ms`, `0.08s` or `0` into seconds."""
    if text == "0":
        return 0.0
    match = _TIME.match(text)
    if match is None:
        raise _err(
            f"{name}={text!r} is not a time; allowed: a number with ms or s (e.g. 80ms)", kind
        )
    seconds = float(match[1]) / (1e3 if match[2] == "ms" else 1.0)
    if seconds > MAX_TIME_S:
        raise _err(f"{name}={text} is beyond {MAX_TIME_S:g} s; allowed: 0 to {MAX_TIME_S:g}s", kind)
    return seconds


def parse_rate(name: str, text: str, kind: str = "net") -> float:
    """`500kbit`, `10mbit`, `1gbit` into bits per second."""
    match = _RATE.match(text)
    if match is None:
        raise _err(
            f"{name}={text!r} is not a bandwidth; allowed: a number with kbit, mbit or gbit "
            "(e.g. 10mbit); leave it out for no limit",
            kind,
        )
    bps = float(match[1]) * _RATE_UNITS[match[2]]
    if not MIN_BPS <= bps <= MAX_BPS:
        raise _err(f"{name}={text} is out of range; allowed: 1kbit to 100gbit", kind)
    return bps


def parse_percent(name: str, text: str, kind: str = "net") -> float:
    """`0.5%` (or `0`) into a probability."""
    if text == "0":
        return 0.0
    match = _LOSS.match(text)
    if match is None:
        raise _err(
            f"{name}={text!r} is not a percentage; allowed: 0% to below 100% (e.g. 0.5%)", kind
        )
    percent = float(match[1])
    if percent >= 100:
        raise _err(f"{name}={text} is not below 100%; allowed: 0% to below 100%", kind)
    return percent / 100


def _profiles_text() -> str:
    return ", ".join(PROFILES)


def _value(kind: str, key: str, value: str) -> dict[str, Any]:
    """One `key=value`, resolved into NetSpec fields."""
    if key in ("rtt", "jitter"):
        return {f"{key}_s": parse_time(key, value, kind)}
    if key == "bw":
        return {"down_bps": parse_rate(key, value, kind)}
    if key == "up":
        return {"up_bps": parse_rate(key, value, kind)}
    if key in ("loss", "reorder", "dup"):
        return {{"dup": "duplicate"}.get(key, key): parse_percent(key, value, kind)}
    if key == "queue":
        seconds = parse_time(key, value, kind)
        if seconds <= 0:
            raise _err(f"queue={value} is empty; allowed: a time above 0 (e.g. 200ms)", kind)
        return {"queue_s": seconds}
    if key == "burst":
        if not re.fullmatch(r"\d+(\.\d+)?", value) or not 1 <= float(value) <= MAX_BURST:
            raise _err(
                f"burst={value!r} is not a burst length; allowed: 1 (independent loss) to "
                f"{MAX_BURST:g} packets",
                kind,
            )
        return {"burst": float(value)}
    if key == "shaper":
        if value not in SHAPERS:
            raise _err(f"shaper={value!r} is unknown; allowed: {', '.join(SHAPERS)}", kind)
        return {"shaper": value}
    if not re.fullmatch(r"\d{1,9}", value):  # seed
        raise _err(f"seed={value!r} is not an integer; allowed: 0 to 999999999", kind)
    return {"seed": int(value)}


def parse_network(argument: str, kind: str = "net") -> tuple[NetSpec, str | None]:
    """The resolved figures and the profile named (if any) in `KIND:ARGUMENT`, `kind` one
    of `PARAMETERS`' keys."""
    allowed = PARAMETERS[kind]
    items = [item.strip() for item in argument.split(",")]
    if not argument.strip() or any(not item for item in items):
        what = (
            f"nothing after {kind}:"
            if not argument.strip()
            else f"an empty item in {kind}:{argument}"
        )
        raise _err(
            f"{what}; allowed: a profile ({_profiles_text()}) and/or parameters, "
            f"e.g. {kind}:rtt=80ms,bw=10mbit",
            kind,
        )
    profile_name: str | None = None
    spec = NetSpec()
    if "=" not in items[0]:
        profile_name = items.pop(0).lower()
        if profile_name not in PROFILES:
            raise _err(f"unknown profile {profile_name!r}; allowed: {_profiles_text()}", kind)
        spec = PROFILES[profile_name].spec
    seen: set[str] = set()
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if not sep:
            raise _err(
                f"{item!r} is not key=value; allowed: one profile first ({_profiles_text()}), "
                f"then key=value with keys {', '.join(allowed)}",
                kind,
            )
        if key not in allowed:
            other = next((k for k in PARAMETERS if k != kind and key in PARAMETERS[k]), None)
            hint = f" ({key} is a parameter of {other}:)" if other else ""
            raise _err(f"unknown parameter {key!r}{hint}; allowed: {', '.join(allowed)}", kind)
        if key in seen:
            raise _err(f"parameter {key} is given twice; allowed: each parameter once", kind)
        seen.add(key)
        values.update(_value(kind, key, value))
    if "down_bps" in values and "up_bps" not in values:
        values["up_bps"] = values["down_bps"]  # bw alone: both ways
    if "up_bps" in values and "down_bps" not in values and not spec.shaped:
        raise _err(
            "up= needs bw= (the bandwidth towards the client) or a profile with one; "
            "allowed: bw=... alone, or bw=... with up=...",
            kind,
        )
    spec = replace(spec, **values)
    _check(spec, kind, seen)
    return spec, profile_name


def _check(spec: NetSpec, kind: str, given: set[str]) -> None:
    """What no single parameter shows: combinations that cannot work."""
    if spec.jitter_s > spec.delay_s + 1e-12:
        raise _err(
            f"jitter={spec.jitter_s * 1e3:g}ms exceeds the one-way delay "
            f"({spec.delay_s * 1e3:g}ms, half of rtt); allowed: 0 to rtt/2",
            kind,
        )
    if kind == "relay" and spec.loss > 0 and spec.rtt_s == 0:
        raise _err(
            "loss needs rtt > 0 (a lost chunk costs one extra RTT here); allowed: loss with rtt",
            kind,
        )
    if spec.shaper == "tbf" and not spec.shaped:
        raise _err("shaper=tbf needs bw= (there is no bandwidth to shape); allowed: with bw", kind)
    if "burst" in given and spec.loss == 0:
        raise _err("burst needs loss= (bursts of what?); allowed: with loss above 0%", kind)
    if spec.burst > 1 and spec.loss > spec.burst / (spec.burst + 1):
        most = spec.burst / (spec.burst + 1) * 100
        raise _err(
            f"loss={spec.loss * 100:g}% cannot come in bursts of {spec.burst:g} packets (bad "
            f"bursts that long give at most {most:.4g}%); allowed: a lower loss or longer burst",
            kind,
        )
    if "queue" in given and not spec.shaped:
        raise _err("queue needs bw= (a queue forms only at a rate); allowed: with bw", kind)


def kbit(bps: float | None) -> float | None:
    """Bits per second in kbit/s, as the results record them (None: no limit)."""
    return None if bps is None else round(bps / 1e3, 3)


def spec_figures(spec: NetSpec, profile: str | None, unit: str) -> dict[str, Any]:
    """What both `net:` and `relay:` record of their figures (`unit`: what is delayed, a
    packet or a chunk); each adds its own models."""
    return {
        "profile": profile,
        "source": PROFILES[profile].source if profile else "given parameters",
        "rtt_ms": round(spec.rtt_s * 1e3, 4),
        "one_way_delay_ms": round(spec.delay_s * 1e3, 4),
        "jitter_ms": round(spec.jitter_s * 1e3, 4),
        "jitter_model": f"uniform in [-jitter, +jitter] per {unit} and direction, in order "
        f"(a {unit} waits for the one ahead, so closely spaced ones are held more than drawn)",
        "loss_pct": round(spec.loss * 100, 6),
        "bw_down_kbit": kbit(spec.down_bps),
        "bw_up_kbit": kbit(spec.up_bps),
        "bandwidth_scope": (
            "one link per direction, shared by all connections" if spec.shaped else None
        ),
        "seed": spec.seed,
    }


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
                "bw_down_kbit": kbit(spec.down_bps),
                "bw_up_kbit": kbit(spec.up_bps),
                "loss_pct": spec.loss * 100,
                "source": profile.source,
            }
        )
    return rows
