"""Entering a network namespace for a moment (setns on this thread, then back): how the relay
binds its listening socket and the forwarder makes its TUN device inside the namespace the
harness made, while everything else they do stays in their own. Python 3.11 has no
`os.setns`, so libc's is called through ctypes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def inside(netns: Path) -> Iterator[None]:
    """This thread in the network namespace at `netns` (e.g. /run/netns/NAME) for the
    block; back in its own after, even on an error."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns} failed")
        try:
            yield
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back failed")
    finally:
        os.close(own)
        os.close(target)
