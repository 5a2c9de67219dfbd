"""Chart titles: the scenario and load of the run (at one point, or over a sweep), or on
an overlay, which line style, marker and hatch marks which run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.analyse.results import Point, RunResult
from harness.present.plots.style import fmt_value
from harness.present.plots.subjects import Subject, tag
from stacks import DEFAULT as DEFAULT_STACK
from transports import TRANSPORTS


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
    talk = scenario.get("conversation") or {}
    turns = talk.get("turns") or 0
    load = (
        f"{scenario.get('requests')} conversations of {turns} turns "
        f"({fmt_value(talk.get('tool_call_ms'))} ms tools, "
        f"+{fmt_value(talk.get('context_bytes'))} B a turn) per transport"
        if turns
        else f"{scenario.get('requests')} streams per transport"
    )
    if axis == "concurrency" and point is None:
        load += " at each point"
    else:
        load += f", {fmt_value(_setting(scenario, axis, value, 'concurrency'))} in flight"
    parts = [load, f"framing {_setting(scenario, axis, value, 'framing')}"]
    ran = scenario.get("transports", TRANSPORTS.names())
    for knob in (k for t in TRANSPORTS if t.name in ran for k in t.knobs):  # their settings
        if not (axis == knob.name and point is None):
            given = _setting(scenario, axis, value, knob.name)
            shown = fmt_value(knob.default if given is None else given)
            parts.append(knob.caption.format(title=knob.title, value=shown))
    path = scenario.get("path") or "loopback"
    if axis != "path" and path != "loopback":
        parts.append(f"path {path}")
    stack = scenario.get("stack") or DEFAULT_STACK
    if axis != "stack" and stack != DEFAULT_STACK:
        parts.append(f"stack {stack}")
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
