"""Short polling: polls start on a fixed grid of `poll_interval_ms` from the stream's creation
(like `setInterval`) and are answered at once. A grid point that passes while a poll is
still in flight is skipped, never bunched up."""

from __future__ import annotations

from clients.interface import ClientSettings
from clients.polling import Polling, polling_exchange


def no_params(settings: ClientSettings) -> dict[str, str]:
    return {}


def grid_delay_s(settings: ClientSettings, poll_number: int, started_ns: int, now_ns: int) -> float:
    """Seconds from `now_ns` until the next grid point (the first poll goes out at once)."""
    if poll_number == 0:
        return 0.0
    interval_ns = int(settings.knob("poll_interval_ms") * 1e6)
    elapsed = now_ns - started_ns
    due = -(-elapsed // interval_ns) * interval_ns  # the next grid point from now
    return (due - elapsed) / 1e9


SHORT_POLL = Polling("short_poll", params=no_params, delay_s=grid_delay_s)
exchange = polling_exchange(SHORT_POLL)
