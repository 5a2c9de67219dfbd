"""Long polling: each poll asks the server to hold it up to `long_poll_wait_s` for a new
token; the next poll goes out as soon as the previous one returns."""

from __future__ import annotations

from clients.interface import ClientSettings
from clients.polling import Polling, polling_exchange


def wait_param(settings: ClientSettings) -> dict[str, str]:
    return {"wait": f"{settings.knob('long_poll_wait_s'):g}"}


def at_once(settings: ClientSettings, poll_number: int, started_ns: int, now_ns: int) -> float:
    return 0.0


LONG_POLL = Polling("long_poll", params=wait_param, delay_s=at_once)
exchange = polling_exchange(LONG_POLL)
