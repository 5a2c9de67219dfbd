"""Chart titles: the scenario and load of the run (at one point, or over a sweep), or on
an overlay, which line style, marker and hatch marks which run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.analyse.results import Point, RunResult
from harness.present.plots.style import fmt_value
from harness.present.plots.subjects import Subject, tag
from transports import TRANSPORTS, Kind


def _setting(scenario: dict[str, Any], axis: str | None, value: object, key: str) -> object:
    if axis == key and value is not None:
        return value
    if key == "preset":
        return scenario.get("source", {}).get("preset")
    return scenario.get(key)


def describe(run: RunResult, point: Point | None) -> str:
    """Two lines naming the scenario and its load: at one point (`point`) or, for a sweep
    chart (`point` None), over the whole sweep."""
    scenario, axis = run.scenario, run.sweep_axis
    value = None if point is None else point.value
    source = scenario.get("source", {})
    preset = _setting(scenario, axis, value, "preset")
    overrides = [
        f"{label} {fmt_value(source[key])}{unit}"
        for key, label, unit in (
            ("ttft_ms", "first token", " ms"),
            ("tokens_per_s", "", " tok/s"),
            ("tokens_per_response", "", " tokens"),
        )
        if source.get(key) is not None and axis != "preset"
    ]
    first = f"scenario {scenario.get('name')} · source {preset}"
    if overrides:
        first += f" ({', '.join(o.strip() for o in overrides)})"
    load = f"{scenario.get('requests')} streams per transport"
    if axis == "concurrency" and point is None:
        load += " at each point"
    else:
        load += f", {fmt_value(_setting(scenario, axis, value, 'concurrency'))} in flight"
    parts = [load, f"framing {_setting(scenario, axis, value, 'framing')}"]
    paced = TRANSPORTS.interval_paced()
    polled = any(name in paced for name in scenario.get("transports", paced))
    if polled and not (axis == "poll_interval_ms" and point is None):
        interval = fmt_value(_setting(scenario, axis, value, "poll_interval_ms"))
        parts.append(f"short poll every {interval} ms")
    batched = TRANSPORTS.of_kind(Kind.CALLBACK)
    called = any(name in batched for name in scenario.get("transports", batched))
    if called and not (axis == "batch_ms" and point is None):
        window = fmt_value(_setting(scenario, axis, value, "batch_ms") or 0)
        parts.append(f"webhook batch_ms {window}")
    path = scenario.get("path") or "loopback"
    if axis != "path" and path != "loopback":
        parts.append(f"path {path}")
    if axis == "long_poll_wait_s" and point is not None:
        parts.append(f"long-poll wait {fmt_value(value)} s")
    if axis is not None:
        values = ", ".join(fmt_value(p.value) for p in run.points)
        if point is None:
            parts.append(f"sweeping {axis} over {values}")
        else:
            parts.append(f"sweep point {axis} = {fmt_value(value)} (of {values})")
    return f"{first}\n{' · '.join(parts)}"


def context(subjects: Sequence[Subject], sweep: bool) -> str:
    """The scenario lines of a chart's title; on an overlay, which style marks which run."""
    if len(subjects) == 1:
        only = subjects[0]
        return describe(only.run, None if sweep else only.point)
    runs = ", ".join(
        f"{tag(subjects, k)}: {s.label} ({_style_name(k)})" for k, s in enumerate(subjects)
    )
    names = sorted({str(s.run.scenario.get("name")) for s in subjects})
    return f"comparing runs {runs}\nscenario {', '.join(names)}"


def _style_name(k: int) -> str:
    return (
        "solid, circles, plain bars",
        "dashed, squares, // bars",
        "dotted, triangles, dotted bars",
        "dash-dot, diamonds, crossed bars",
    )[k % 4]
