"""What the helper processes (the relay, the forwarder) share: their common command-line
arguments, their priority, and their lateness figures. Standard library only, like them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LATENESS_SAMPLES = 100_000  # the most recent lateness samples kept for the statistics


def add_helper_arguments(parser: argparse.ArgumentParser) -> None:
    """What every helper process takes: its statistics file, its parent, its priority."""
    parser.add_argument("--stats", type=Path, help="JSON statistics, on SIGUSR1 and at exit")
    parser.add_argument("--parent-pid", type=int, help="stop when no longer this PID's child")
    parser.add_argument(
        "--scheduling",
        choices=("realtime", "normal"),
        default="realtime",
        help="realtime: SCHED_FIFO 1 when allowed (default); normal: the default policy",
    )


def raise_priority(wanted: str) -> str:
    """SCHED_FIFO 1 when `wanted` is realtime and allowed; what it runs at."""
    if wanted == "realtime":
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            return "SCHED_FIFO 1"
        except (OSError, AttributeError):
            pass
    return "normal"


def lateness_figures(samples: Iterable[float], count_name: str) -> dict[str, Any]:
    """How late held data was written against its due time: p50, p99 and max in ms, and
    how many samples (under `count_name`)."""
    late = sorted(samples)

    def pct(q: float) -> float | None:
        if not late:
            return None
        return round(late[min(len(late) - 1, int(q * len(late)))] * 1e3, 4)

    return {
        count_name: len(late),
        "lateness_ms_p50": pct(0.5),
        "lateness_ms_p99": pct(0.99),
        "lateness_ms_max": None if not late else round(late[-1] * 1e3, 4),
    }
