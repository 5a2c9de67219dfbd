"""The event loop every benchmark client runs on: uvloop, as the server under test runs
(uvicorn picks it when it is installed), so both sides pay the same loop overhead; and no
garbage-collector pauses inside a measured window (`no_gc_pauses`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on a fresh uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


@contextlib.contextmanager
def no_gc_pauses() -> Iterator[None]:
    """The cyclic garbage collector off for a measured window, on (and run) after it. A
    window's records grow by several objects per token, and full collections over them
    paused the client's reads for tens of ms: delay the transport never added. The records
    hold no cycles; what cycles asyncio makes in one window are collected after it."""
    gc.freeze()  # what exists now (imports, earlier phases) is never scanned again
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
