"""Open-loop arrival schedules: when each request of a `rate` scenario is due.

`arrival_offsets(n, rate, kind, seed)` gives the offsets, in seconds from the start of the
measured window, at which `n` requests arrive at `rate` per second on average. Pure: no
clock, no I/O; the driver adds the offsets to the window's start (`run_jobs(start_ns=...)`).

- `constant`: request k arrives at exactly k / rate.
- `poisson`: a Poisson process (independent exponential gaps, mean 1 / rate), the usual
  model of independent users; request 0 arrives at 0, so a window never opens idle.

The schedule depends only on its arguments: the gaps come from numpy's `default_rng`
seeded with the scenario's seed and a fixed salt (so the arrivals are not the mock's own
random stream), and the same scenario gets the same schedule on every run and host.
"""

from __future__ import annotations

import itertools

import numpy as np

ARRIVALS = ("poisson", "constant")
SEED_SALT = 0x61727269  # "arri": keeps the schedule's stream apart from other seeded ones


def arrival_offsets(n: int, rate: float, kind: str, seed: int) -> list[float]:
    """Offsets in seconds (non-decreasing, the first 0) of `n` arrivals at `rate` per second."""
    if n < 0:
        raise ValueError(f"n must be 0 or more, got {n}")
    if not (rate > 0 and np.isfinite(rate)):
        raise ValueError(f"rate must be a positive finite number, got {rate}")
    if kind == "constant":
        return [k / rate for k in range(n)]
    if kind == "poisson":
        rng = np.random.default_rng([seed, SEED_SALT])
        gaps = rng.exponential(1 / rate, max(n - 1, 0))
        return list(itertools.accumulate((float(g) for g in gaps), initial=0.0))[:n]
    raise ValueError(f"unknown arrivals {kind!r}; allowed: {', '.join(ARRIVALS)}")
