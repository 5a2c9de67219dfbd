"""Server settings that are not part of any one request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSettings:
    idle_timeout_s: float = 30.0  # a polled stream nobody polls for this long is dropped
    retention_s: float = 600.0  # a finished stream's timeline stays fetchable this long
    max_long_poll_wait_s: float = 60.0  # longest `wait` a long poll may ask for
    sse_resume_grace_s: float = 0.0  # keep generating this long after an SSE client drops
