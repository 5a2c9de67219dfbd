"""Load shapes: how many users each transport has at a moment of a load test (pure).

- steady: `users` from the start (ramped up at `spawn_rate`) to the end.
- step: a staircase: `step_users` more every `step_time_s`, up to `users`, then held.
- spike: `users`, then `spike_users` from `spike_at_s` for `spike_time_s`, then `users` again.

Every shape ends at `run_time_s`. The locustfile's `LoadTestShape` asks `users_at` once a
second and multiplies by the number of transports under test (users are per transport).
"""

from __future__ import annotations

from harness.measure.scenario import Load


def users_at(load: Load, elapsed_s: float) -> int | None:
    """Users per transport `elapsed_s` seconds into the test; None once the test is over."""
    if elapsed_s >= load.run_time_s:
        return None
    if load.shape == "step":
        steps = int(elapsed_s // load.step_time_s) + 1
        return min(load.users, steps * load.step_users)
    if load.shape == "spike":
        spiking = load.spike_at_s <= elapsed_s < load.spike_at_s + load.spike_time_s
        return load.spike_users if spiking else load.users
    return load.users


def peak_users(load: Load) -> int:
    """The most users per transport the shape ever asks for."""
    return max(load.users, load.spike_users) if load.shape == "spike" else load.users
