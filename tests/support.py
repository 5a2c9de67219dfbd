"""Helpers shared by test modules (importable because pytest's pythonpath includes tests/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`python bench.py ARGS` as a user runs it, from the project folder."""
    return subprocess.run(
        [sys.executable, "bench.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
