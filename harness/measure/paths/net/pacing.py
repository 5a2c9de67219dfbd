"""The relay's model: when each chunk it holds is due. Pure (no I/O): `Pipe._due` in
`pipes.py` applies it to each chunk as it is read, in either direction:

    depart = max(arrival, handshake done), paced by the token bucket (--down-bps, --up-bps)
    due    = max(previous due, depart + delay + jitter (+ one RTT with probability loss))

so chunks leave in the order they came (a later chunk never overtakes an earlier one, as on
one TCP connection), and a request/response round trip costs the full RTT: the hold happens
in each direction. The model, part by part:

- delay: `--delay-ms`, the one-way delay (half the RTT).
- jitter: uniform in [-jitter, +jitter] per chunk and direction (netem's default when no
  distribution is named), clamped so no chunk is held less than zero; the in-order rule
  turns a negative draw after a positive one into no gain.
- loss: what TCP makes of a lost segment, a late one: with probability `--loss` a chunk is
  held one extra RTT (a retransmission after about one RTT, as fast retransmit or a tail loss
  probe would do). No byte is ever dropped; the chunks behind it wait too (head of line).
- bandwidth: one token bucket per direction, shared by every connection (one access link),
  at `--down-bps` (server to client) and `--up-bps` (client to server); its burst is
  `BURST_S` worth of bytes (at least two full-size segments). Large reads are cut into
  slices (`SLICE_S` worth, at least one segment) so a slow link delivers progressively.
- handshake: a new connection's bytes towards the server take the link no earlier than one
  RTT after it was accepted, the cost of TCP's SYN / SYN-ACK that loopback does not charge
  (then they are paced: a large request after a handshake costs the RTT plus its time on
  the link, as TCP sends no data before the handshake is done).

With no delay, jitter, loss or bandwidth a chunk is written in the same callback that read
it.
"""

from __future__ import annotations

from dataclasses import dataclass

SEGMENT = 1448  # a full-size TCP segment on a 1500-byte MTU (with timestamps)
SLICE_S = 0.002  # a paced direction cuts reads into slices of this much link time
BURST_S = 0.005  # the token bucket's depth, in link time


@dataclass(frozen=True, slots=True)
class Impairment:
    """What the relay does to every chunk, in seconds and as a probability."""

    delay_s: float = 0.0  # one way
    jitter_s: float = 0.0  # uniform in [-jitter, +jitter]
    loss: float = 0.0  # probability that a chunk is held one extra RTT
    rtt_s: float = 0.0  # the retransmission penalty and the handshake's cost
    handshake: bool = True  # a new connection's first bytes wait one RTT


class TokenBucket:
    """One direction of the link: `rate` bytes/s, `burst` bytes deep, shared by every
    connection. `depart` answers when a chunk that is ready at `ready` has left the link
    (its last byte sent), and charges it."""

    def __init__(self, rate_bytes_per_s: float) -> None:
        self.rate = rate_bytes_per_s
        self.burst = max(2.0 * SEGMENT, rate_bytes_per_s * BURST_S)
        self.slice = max(SEGMENT, int(rate_bytes_per_s * SLICE_S))
        self.tokens = self.burst
        self.time = 0.0  # the tokens are known at this time

    def depart(self, ready: float, size: int) -> float:
        t = max(ready, self.time)
        self.tokens = min(self.burst, self.tokens + (t - self.time) * self.rate)
        self.tokens -= size
        if self.tokens < 0.0:
            t -= self.tokens / self.rate
            self.tokens = 0.0
        self.time = t
        return t
