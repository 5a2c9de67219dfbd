"""Short polling: polls start on a fixed grid of `poll_interval_s` from the stream's creation
(like `setInterval`) and are answered at once. A grid point that passes while a poll is
still in flight is skipped, never bunched up."""

from __future__ import annotations

import asyncio
import time

from clients.polling import PollingClient


class ShortPollClient(PollingClient):
    transport = "short_poll"

    async def before_poll(self, poll_number: int, started_ns: int) -> None:
        if poll_number == 0:
            return
        interval_ns = int(self.settings.poll_interval_s * 1e9)
        elapsed = time.perf_counter_ns() - started_ns
        due = -(-elapsed // interval_ns) * interval_ns  # the next grid point from now
        await asyncio.sleep((started_ns + due - time.perf_counter_ns()) / 1e9)
