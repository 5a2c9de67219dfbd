"""Long polling: each poll asks the server to hold it up to `long_poll_wait_s` for a new
token; the next poll goes out as soon as the previous one returns."""

from __future__ import annotations

from clients.polling import PollingClient


class LongPollClient(PollingClient):
    transport = "long_poll"

    def poll_params(self) -> dict[str, str]:
        return {"wait": f"{self.settings.long_poll_wait_s:g}"}
