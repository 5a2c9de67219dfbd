"""How many processes a run spreads over: servers under test, and the driver's clients.

One process of either side tops out near one core, and a harness whose clients saturate
their core measures itself, not the transport. A scenario's `server_processes = N` starts
N server processes on N loopback ports; `client_processes = M` runs the driver's streams
in M processes (`harness.measure.client_processes`).

The rule for `0` (`"auto"`, the default): on a machine with `c` cores (`os.cpu_count()`),
`max(1, c // 2)` of each, so that servers and clients together fill the machine without
competing for more cores than it has (2 cores: 1 and 1; 8 cores: 4 and 4). Auto is 1
wherever more than one is refused: `server_processes` behind a path other than loopback
(a path's layers front one server) and with the browser client (pages are same-origin
with one server), `client_processes` with the browser client (one Chromium).
"""

from __future__ import annotations

import os

from errors import ScenarioError

AUTO = 0
MAX_PROCESSES = 64
PROCESS_FIELDS = ("server_processes", "client_processes")


def auto_processes(cpu_count: int | None = None) -> int:
    """The auto rule: `max(1, c // 2)` on `c` cores (`os.cpu_count()` when not given)."""
    cores = os.cpu_count() if cpu_count is None else cpu_count
    return max(1, (cores or 1) // 2)


def resolve(value: int, cpu_count: int | None = None) -> int:
    """A process count as given (`AUTO`: by the rule)."""
    return auto_processes(cpu_count) if value == AUTO else value


def check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PROCESSES:
        raise ScenarioError(
            f'{name} must be 0 or "auto" (one per two cores) or 1 to {MAX_PROCESSES}, got {value!r}'
        )


def parse_count(where: str, name: str, value: object) -> int:
    """A scenario file's `server_processes` / `client_processes`: an integer or "auto"."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return AUTO
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f'{where}{name} must be an integer or "auto", got {value!r}')
    check_count(f"{where}{name}", value)
    return value


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` shares as even as integers allow (ceil first, then floor), summing
    to `total`: split(10, 3) == [4, 3, 3]."""
    share, extra = divmod(total, parts)
    return [share + (1 if k < extra else 0) for k in range(parts)]


def effective_client_processes(
    requested: int, concurrency: int, jobs: int, many_processes: bool = True
) -> int:
    """The client processes a phase runs in: as `requested` (`AUTO`: by the rule), but never
    more than its concurrency or its jobs (each process needs a stream to run), and one for
    a client kind that runs in one process only (`many_processes` False: the browser)."""
    if not many_processes:
        return 1
    return max(1, min(resolve(requested), concurrency, jobs))
