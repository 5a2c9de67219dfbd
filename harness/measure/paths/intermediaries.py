"""Intermediaries users meet in production, as path layers: `idle-timeout:S` (a load
balancer's idle timeout) and `cdn-buffer[:KIB]` (a CDN that holds responses). The relay of
the `net:` layer does the relaying (`harness.measure.paths.net`), with no delay, loss or
shaping of its own, and counts what the intermediary did in its statistics.

`idle-timeout:S` closes a connection on which no bytes have moved, either way, for S
seconds: Elastic Load Balancing's connection setting, as AWS documents it, "the time, in
seconds, that the connection is allowed to be idle (no data has been sent over the
connection) before it is closed by the load balancer" (60 s by default; Classic Load
Balancer ConnectionSettings.IdleTimeout). A stream whose first token comes after S
seconds, with nothing sent meanwhile, is cut before it starts; keep-alive bytes
(`heartbeat_s`) keep it open. The relay counts `idle_closes`.

`cdn-buffer[:KIB]` holds each response until KIB KiB of its body (default 64) or its end,
unless it says `X-Accel-Buffering: no` or `Cache-Control: no-transform`: the model and its
sources are in `harness/measure/paths/net/holding.py`. The relay counts the responses it
held and the lumps it let through (`cdn_hold`).
"""

from __future__ import annotations

from typing import Any

from errors import ScenarioError
from harness.measure.paths import PathLayer
from harness.measure.paths.net.holding import DEFAULT_HOLD_KIB
from harness.measure.paths.net.layer import NetworkLayer
from harness.measure.paths.net.spec import NetSpec

IDLE = "idle-timeout"
CDN = "cdn-buffer"
IDLE_SOURCE = "Elastic Load Balancing ConnectionSettings.IdleTimeout (AWS documentation)"
CDN_SOURCE = "harness/measure/paths/net/holding.py (Cloudflare, nginx, RFC 9111)"
KEPT = ("relay_pid", "relay_listen", "relay_stats")  # of the relay's own parameters


class Intermediary(NetworkLayer):
    """The relay doing only what one intermediary does (`model`, from `source`)."""

    def __init__(self, kind: str, argument: str, spec: NetSpec, figures: dict[str, Any]) -> None:
        super().__init__(argument, spec, None)
        self.name = f"{kind}:{argument}" if argument else kind
        self.figures = figures

    def parameters(self) -> dict[str, Any]:
        relay = super().parameters()
        return {**self.figures, **{k: v for k, v in relay.items() if k in KEPT}}


def _positive(kind: str, text: str, unit: str, example: str) -> float:
    try:
        value = float(text.strip().removesuffix(unit))
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ScenarioError(f"path layer {kind} takes {example}, got {text!r}")
    return value


def idle_timeout_layer(argument: str) -> PathLayer:
    """`idle-timeout:S` (seconds, e.g. 5 or 5s)."""
    seconds = _positive(IDLE, argument, "s", f"the idle time in seconds, e.g. {IDLE}:5")
    figures = {
        "idle_timeout_s": seconds,
        "model": "a connection with no bytes either way for idle_timeout_s is closed on both sides",
        "source": IDLE_SOURCE,
    }
    return Intermediary(IDLE, argument, NetSpec(idle_s=seconds), figures)


def cdn_buffer_layer(argument: str) -> PathLayer:
    """`cdn-buffer` or `cdn-buffer:KIB` (KiB held before a lump goes, e.g. 64)."""
    kib = (
        _positive(CDN, argument, "k", f"the KiB it holds, e.g. {CDN}:64")
        if argument
        else float(DEFAULT_HOLD_KIB)
    )
    figures = {
        "hold_kib": kib,
        "model": "each response held until hold_kib KiB of body or its end, unless "
        "X-Accel-Buffering: no or Cache-Control: no-transform",
        "source": CDN_SOURCE,
    }
    return Intermediary(CDN, argument, NetSpec(hold_kib=kib), figures)
