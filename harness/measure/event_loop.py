"""The event loop every benchmark client runs on: uvloop, as the server under test runs
(uvicorn picks it when it is installed), so both sides pay the same loop overhead.

Measured with scenarios/scale-1000.toml: the asyncio driver spent about a third less CPU
per token on uvloop than on the standard library's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on a fresh uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
