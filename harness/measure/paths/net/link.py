"""The packet emulator's model: what one direction of the link does to each IP packet, and
when it is due at the far end. Pure (no I/O): `forwarder.py` applies it to every packet it
reads from a TUN device, TCP and UDP alike.

    lost?       independent (probability `loss`) or bursty (Gilbert-Elliott, `burst` > 1)
    queued      at the bottleneck, `rate` bits/s: a packet that would take the bytes waiting
                (its own included) beyond `queue_bytes` is dropped (tail drop), so a full
                queue shows as delay (bufferbloat) and then as loss
    sent        when the link has sent every packet queued before it, plus its own bytes
    due         sent + delay + jitter, never before the packet ahead of it (no reordering
                unless asked); with probability `reorder` a packet skips the delay and
                overtakes the ones in flight; with probability `duplicate` it arrives twice

netem's order of operations, on one direction: loss and duplication as a packet arrives,
then the rate queue, then the delay. Jitter is uniform in [-jitter, +jitter] (netem's
default with no distribution named), clamped so no packet is held less than zero.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One direction, in seconds, bits per second (None: no limit), bytes and probabilities."""

    delay_s: float = 0.0
    jitter_s: float = 0.0
    rate_bps: float | None = None
    queue_bytes: int = 0  # the most bytes waiting at the rate, a new packet's included
    loss: float = 0.0  # the long-run fraction of packets lost
    burst: float = 1.0  # mean packets per loss burst: 1 is independent loss
    reorder: float = 0.0
    duplicate: float = 0.0
    seed: int = 1


@dataclass(slots=True)
class LinkCounts:
    """What one direction did, by packets (and bytes where it matters)."""

    packets: int = 0  # read from the sending side
    bytes: int = 0
    lost: int = 0  # dropped by the loss model
    queue_drops: int = 0  # dropped because the queue was full
    duplicated: int = 0
    reordered: int = 0
    delivered: int = 0  # scheduled for the far end (duplicates included)
    queue_delay_max_s: float = 0.0


class GilbertElliott:
    """Two states: good (nothing lost) and bad (everything lost). Leaving bad has
    probability 1/burst, so bursts are `burst` packets long on average; entering it is set so
    the long-run loss is `loss`: p_bad = loss / (1 - loss) / burst, a probability only for
    loss <= burst / (burst + 1) (`max_bursty_loss`; the parser refuses more). With burst 1
    this is independent loss only in its mean: use `Bernoulli` for that."""

    def __init__(self, loss: float, burst: float, rng: random.Random) -> None:
        self.leave = 1.0 / burst
        self.enter = loss / (1.0 - loss) * self.leave
        self.bad = False
        self.rng = rng

    def lost(self) -> bool:
        draw = self.rng.random()
        self.bad = draw >= self.leave if self.bad else draw < self.enter
        return self.bad


class Bernoulli:
    def __init__(self, loss: float, rng: random.Random) -> None:
        self.loss = loss
        self.rng = rng

    def lost(self) -> bool:
        return self.loss > 0.0 and self.rng.random() < self.loss


@dataclass(frozen=True, slots=True)
class Delivery:
    due: float
    in_order: bool  # False: a reordered packet (it may overtake the ones in flight)


@dataclass
class Link:
    """One direction of the emulated link. `admit(now, size)` charges a packet read at `now`
    and says when its copies are due (none: it was dropped)."""

    spec: LinkSpec
    counts: LinkCounts = field(default_factory=LinkCounts)
    _free_at: float = 0.0  # when the rate queue is empty
    _last_due: float = 0.0  # the in-order packets' latest due time

    def __post_init__(self) -> None:
        spec = self.spec
        # a generator per use, each seeded from the direction's seed and its use (string
        # seeds hash with SHA-512), so no two draw the same numbers
        self._rng = random.Random(f"{spec.seed}/draws")
        loss_rng = random.Random(f"{spec.seed}/loss")
        self._loss: GilbertElliott | Bernoulli = (
            GilbertElliott(spec.loss, spec.burst, loss_rng)
            if spec.burst > 1.0 and spec.loss > 0.0
            else Bernoulli(spec.loss, loss_rng)
        )

    def admit(self, now: float, size: int) -> list[Delivery]:
        spec, counts = self.spec, self.counts
        counts.packets += 1
        counts.bytes += size
        if self._loss.lost():
            counts.lost += 1
            return []
        copies = 1
        if spec.duplicate > 0.0 and self._rng.random() < spec.duplicate:
            copies = 2
            counts.duplicated += 1
        out = []
        for _ in range(copies):
            sent = self._sent(now, size)
            if sent is None:
                counts.queue_drops += 1
                continue
            out.append(self._due(sent))
        counts.delivered += len(out)
        return out

    def _sent(self, now: float, size: int) -> float | None:
        """When the packet's last bit has left the link (None: the queue was full)."""
        rate = self.spec.rate_bps
        if rate is None:
            return now
        start = max(now, self._free_at)
        waiting_bytes = (start - now) * rate / 8
        if waiting_bytes + size > self.spec.queue_bytes and start > now:
            return None
        self.counts.queue_delay_max_s = max(self.counts.queue_delay_max_s, start - now)
        self._free_at = start + size * 8 / rate
        return self._free_at

    def _due(self, sent: float) -> Delivery:
        spec = self.spec
        if spec.reorder > 0.0 and self._rng.random() < spec.reorder:
            self.counts.reordered += 1
            return Delivery(sent, in_order=False)
        delay = spec.delay_s
        if spec.jitter_s > 0.0:
            delay = max(0.0, delay + self._rng.uniform(-spec.jitter_s, spec.jitter_s))
        due = max(sent + delay, self._last_due)
        self._last_due = due
        return Delivery(due, in_order=True)


def max_bursty_loss(burst: float) -> float:
    """The most long-run loss Gilbert-Elliott can give with bursts of `burst` packets."""
    return burst / (burst + 1.0)


def queue_bytes(rate_bps: float | None, queue_s: float, mtu: int = 1500) -> int:
    """A queue of `queue_s` at the rate, in bytes (at least two full packets)."""
    if rate_bps is None:
        return 0
    return max(2 * mtu, int(rate_bps / 8 * queue_s))
