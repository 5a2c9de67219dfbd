"""The browser's clocks against the server's (`time.perf_counter_ns()`, CLOCK_MONOTONIC).

Two clocks matter:

- CDP `Network` timestamps (seconds of Chromium's TimeTicks). These stamp every token, so
  before relying on them the session runs a known-answer check (`check_cdp_clock`): short
  streams whose tokens the server stamps as it emits them (`emit_ns`). Each network event
  that completed tokens must carry a CDP stamp after the server's stamp of the last token
  it completed (a few ms at most: framing, kernel, Chromium) and before the moment the
  Python side received the event. If the CDP clock were CLOCK_MONOTONIC plus an offset d,
  every (CDP - emit) would be shifted by +d and every (Python - CDP) by -d, so the
  smallest of each bound d: `offset_bound_ms` = [-min(Python - CDP), min(CDP - emit)].
  That interval is the check's error, recorded in each phase's `extra`.
- The page's `performance.now()` (ms since the page's time origin, also TimeTicks, but
  from an unknown origin and coarsened to 100 us). It stamps when JavaScript saw the bytes.
  `calibrate_js_clock` maps it to CLOCK_MONOTONIC: each Python -> page -> Python round trip
  bounds the offset (the page read its clock between the two Python stamps), and the
  intersection of the bounds is where the true offset lies. Chromium also states the
  offset itself (`performance.timeOrigin` is TimeTicks' origin on the wall clock); when
  that agrees with the bounds it is used (exact to microseconds), else the bounds' middle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from errors import UserError

COARSENING_NS = 100_000  # performance.now() resolution without cross-origin isolation
MAX_CDP_LAG_MS = 50.0  # no event this close to its send: nothing is known (measured: 0.3 ms)
STAMP_TOLERANCE_NS = 1000  # CDP stamps have microsecond resolution


class BrowserClockMismatch(UserError, RuntimeError):
    """The browser's network timestamps are not on the server's clock: refuse to measure."""


class BrowserClockInconclusive(BrowserClockMismatch):
    """No network event came close enough to its send to bound the CDP clock's offset
    (a browser too busy to answer promptly): try again when it is quieter."""


def stats_ms(values_ns: Sequence[float]) -> dict[str, float | int]:
    """n, min, p50, p90, p99 and max of nanosecond values, in ms (linear interpolation)."""
    if not values_ns:
        return {"n": 0}
    ms = np.asarray(values_ns, dtype=float) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "n": int(ms.size),
        "min": round(float(ms.min()), 4),
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "p99": round(float(p99), 4),
        "max": round(float(ms.max()), 4),
    }


@dataclass(frozen=True, slots=True)
class ClockSample:
    """One network event of a check stream."""

    what: str  # the CDP event kind, e.g. "dataReceived (chunked)"
    emit_ns: int  # the server's stamp of the last token the event completed
    cdp_ns: int  # the event's CDP timestamp
    seen_ns: int  # when the Python side received the event


def check_cdp_clock(samples: Sequence[ClockSample]) -> dict[str, Any]:
    """The known-answer check over `samples`; raises BrowserClockMismatch when the CDP clock
    is not the server's. Returns the figures recorded in results."""
    if not samples:
        raise BrowserClockMismatch("the CDP clock check got no network event to compare")
    lag = [s.cdp_ns - s.emit_ns for s in samples]
    lead = [s.seen_ns - s.cdp_ns for s in samples]
    report: dict[str, Any] = {
        "events": len(samples),
        "kinds": sorted({s.what for s in samples}),
        "cdp_minus_emit_ms": stats_ms(lag),
        "python_minus_cdp_ms": stats_ms(lead),
        "offset_bound_ms": [round(-min(lead) / 1e6, 4), round(min(lag) / 1e6, 4)],
    }
    problems = []
    if min(lag) < -STAMP_TOLERANCE_NS:
        problems.append(f"a CDP stamp came {-min(lag) / 1e6:.3f} ms before the server sent")
    if min(lead) < -STAMP_TOLERANCE_NS:
        problems.append(f"a CDP stamp lies {-min(lead) / 1e6:.3f} ms after Python received it")
    if problems:
        raise BrowserClockMismatch(
            "Chromium's network timestamps are not on the server's clock (CLOCK_MONOTONIC): "
            + "; ".join(problems)
        )
    if min(lag) / 1e6 > MAX_CDP_LAG_MS:
        raise BrowserClockInconclusive(
            f"the CDP clock check is inconclusive: no network event came within "
            f"{MAX_CDP_LAG_MS:g} ms of the server's send (the closest: {min(lag) / 1e6:.1f} ms)"
        )
    report["ok"] = True
    return report


@dataclass(frozen=True, slots=True)
class JsClock:
    """performance.now() of one page -> CLOCK_MONOTONIC: mono_ns = ms * 1e6 + offset_ns."""

    offset_ns: int
    bound_ns: int  # the width of the round trips' bounds on the offset
    method: str  # "timeOrigin" (Chromium's own offset, within the bounds) or "round trips"
    origin_minus_bounds_ns: int  # timeOrigin's offset minus the bounds' middle

    def mono_ns(self, js_ms: float) -> int:
        return round(js_ms * 1e6) + self.offset_ns

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "bound_ms": round(self.bound_ns / 1e6, 4),
            "time_origin_minus_round_trips_ms": round(self.origin_minus_bounds_ns / 1e6, 4),
        }


def calibrate_js_clock(
    round_trips: Sequence[tuple[int, float, int]], origin_offset_ns: int
) -> JsClock:
    """`round_trips`: (Python stamp before, the page's performance.now(), Python stamp
    after); `origin_offset_ns`: performance.timeOrigin in ns minus (CLOCK_REALTIME -
    CLOCK_MONOTONIC) as Python read them."""
    low = max(before - round(ms * 1e6) for before, ms, _ in round_trips) - COARSENING_NS
    high = min(after - round(ms * 1e6) for _, ms, after in round_trips) + COARSENING_NS
    if low > high:  # inconsistent bounds (a coarsening jump): use the tightest round trip
        before, ms, after = min(round_trips, key=lambda r: r[2] - r[0])
        low, high = before - round(ms * 1e6), after - round(ms * 1e6)
    middle = (low + high) // 2
    if low <= origin_offset_ns <= high:
        return JsClock(origin_offset_ns, high - low, "timeOrigin", origin_offset_ns - middle)
    return JsClock(middle, high - low, "round trips", origin_offset_ns - middle)
