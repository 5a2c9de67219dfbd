"""Server settings that are not part of any one request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSettings:
    idle_timeout_s: float = 30.0  # a polled stream nobody polls for this long is dropped
    retention_s: float = 600.0  # a finished stream's timeline stays fetchable this long
    max_long_poll_wait_s: float = 60.0  # longest `wait` a long poll may ask for
    sse_resume_grace_s: float = 0.0  # keep generating this long after an SSE client drops
    # Test aids for the regression check: a deliberate slowdown and deliberate bloat.
    inject_delay_ms: float = 0.0  # hold every token this long after the source emits it
    inject_pad_bytes: int = 0  # pad every token message with this many bytes
