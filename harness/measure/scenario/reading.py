"""Reading a scenario: a TOML file (`load_scenario`), a dict (`scenario_from_dict`, as a
saved run records it), and command-line flags over either (`with_overrides`). Types are
checked as read, every other rule by `harness.measure.scenario.validation`."""

from __future__ import annotations

import tomllib
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, get_args, get_type_hints

from errors import ScenarioError
from harness.measure.paths import split_paths
from harness.measure.processes import PROCESS_FIELDS, parse_count
from harness.measure.scenario.http_versions import http_text
from harness.measure.scenario.model import (
    DEFAULT_KNOBS,
    KNOB_NAMES,
    SWEEP_AXES,
    Conversation,
    Faults,
    Inject,
    Load,
    Scenario,
    Sweep,
)
from harness.measure.scenario.validation import validated
from servers.sources.mock import PRESETS
from servers.sources.spec import SOURCE_KINDS, SourceSpec
from transports import TRANSPORTS


def parse_transports(value: str | list[str]) -> tuple[str, ...]:
    """`all`, a comma-separated string, or a list of names; unknown names are an error."""
    if isinstance(value, str):
        if value.strip() == "all":
            return TRANSPORTS.names()
        names = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = list(value)
    else:
        raise ScenarioError('transports must be "all", "a,b,..." or a list of names')
    unknown = [n for n in names if n not in TRANSPORTS]
    if unknown:
        allowed = ", ".join(TRANSPORTS.names())
        raise ScenarioError(f"unknown transport(s) {', '.join(unknown)}; allowed: all, {allowed}")
    if not names:
        raise ScenarioError(f"no transport given; allowed: all, {', '.join(TRANSPORTS.names())}")
    return tuple(dict.fromkeys(names))


def _allowed_types(cls: type) -> dict[str, tuple[type, ...]]:
    """The types a scenario file may give each plain field of the dataclass `cls`, read from
    its annotations: a `str`, `int`, `float` or `bool` field (or one of them or None) takes
    that type, a float field an int too. Other fields (tables, lists) are parsed on their own."""
    hints = get_type_hints(cls)
    allowed: dict[str, tuple[type, ...]] = {}
    for f in fields(cls):
        hint = hints[f.name]
        types = [t for t in get_args(hint) or (hint,) if t is not type(None)]
        if len(types) == 1 and types[0] in (str, int, float, bool):
            allowed[f.name] = (int, float) if types[0] is float else (types[0],)
    return allowed


_TYPES = _allowed_types(Scenario)
_LOAD_TYPES = _allowed_types(Load)
_INJECT_TYPES = _allowed_types(Inject)
_FAULTS_TYPES = _allowed_types(Faults)
# a source's seed is the scenario's (request k uses seed k), never its own
_SOURCE_TYPES = {k: v for k, v in _allowed_types(SourceSpec).items() if k != "seed"}
_KNOB_TYPES = {name: (int, float) for name in KNOB_NAMES}
_AXIS_TYPES = {axis: {**_TYPES, **_SOURCE_TYPES, **_KNOB_TYPES}[axis] for axis in SWEEP_AXES}
SOURCE_FLAGS = (
    "preset",
    "ttft_ms",
    "tokens_per_s",
    "tokens_per_response",
    "base_url",
    "model",
    "max_tokens",
    "speed",
    "source",
)


def _check_type(where: str, key: str, value: Any, allowed: tuple[type, ...]) -> Any:
    wrong = isinstance(value, bool) != (bool in allowed) or not isinstance(value, allowed)
    if wrong:
        names: dict[type, str] = {float: "number", bool: "true or false"}
        kinds = " or ".join(names.get(t, t.__name__) for t in allowed)
        raise ScenarioError(f"{where}{key} must be {kinds}, got {value!r}")
    return float(value) if float in allowed else value


def _table(where: str, key: str, value: Any, types: dict[str, tuple[type, ...]]) -> dict[str, Any]:
    """The checked fields of a `[key]` table whose fields have the types in `types`."""
    if not isinstance(value, dict) or not set(value) <= set(types):
        raise ScenarioError(f"{where}[{key}] allows only {', '.join(types)}, got {value!r}")
    return {k: _check_type(f"{where}{key}.", k, v, types[k]) for k, v in value.items()}


def scenario_from_dict(data: dict[str, Any], where: str = "") -> Scenario:
    known = {f.name for f in fields(Scenario)} - {"knobs"} | set(KNOB_NAMES)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScenarioError(
            f"{where}unknown scenario field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    knobs: dict[str, float] = {}
    for key, value in data.items():
        if key in KNOB_NAMES:
            knobs[key] = _check_type(where, key, value, (int, float))
        elif key == "transports":
            values[key] = parse_transports(value)
        elif key == "server_faults" and isinstance(value, list):  # a list of fault names
            values[key] = "+".join(_check_type(where, key, v, (str,)) for v in value)
        elif key == "source":
            if not isinstance(value, dict):
                raise ScenarioError(f"{where}[source] must be a table")
            values[key] = source_from_dict(value, where)
        elif key == "sweep":
            if not isinstance(value, dict) or set(value) != {"axis", "values"}:
                raise ScenarioError(f'{where}[sweep] needs exactly axis = "..." and values = [...]')
            values[key] = parse_sweep(value["axis"], value["values"], where)
        elif key == "load":
            values[key] = Load(**_table(where, key, value, _LOAD_TYPES))
        elif key == "inject":
            values[key] = Inject(**_table(where, key, value, _INJECT_TYPES))
        elif key == "faults":
            values[key] = Faults(**_table(where, key, value, _FAULTS_TYPES))
        elif key == "conversation":
            values[key] = conversation_from_dict(value, where)
        elif key in PROCESS_FIELDS:
            values[key] = parse_count(where, key, value)
        elif key == "http":
            values[key] = http_text(value, where)
        else:
            values[key] = _check_type(where, key, value, _TYPES[key])
    scenario = Scenario(**values, knobs=tuple({**dict(DEFAULT_KNOBS), **knobs}.items()))
    return replace(scenario, source=replace(scenario.source, seed=scenario.seed))


_CONVERSATION_TYPES: dict[str, tuple[type, ...]] = {
    "turns": (int,),
    "tool_call_ms": (int, float),
    "context_bytes": (int,),
}


def conversation_from_dict(data: Any, where: str = "") -> Conversation:
    """`[conversation]`: turns, tool_call_ms, context_bytes as numbers; `state` a name or a
    list of names, `keepalive` true, false or a list of both (variants)."""
    allowed = (*_CONVERSATION_TYPES, "state", "keepalive")
    if not isinstance(data, dict) or not set(data) <= set(allowed):
        raise ScenarioError(f"{where}[conversation] allows only {', '.join(allowed)}, got {data!r}")
    plain = {k: v for k, v in data.items() if k in _CONVERSATION_TYPES}
    values: dict[str, Any] = _table(where, "conversation", plain, _CONVERSATION_TYPES)
    if "state" in data:
        states = data["state"] if isinstance(data["state"], list) else [data["state"]]
        values["state"] = tuple(
            _check_type(f"{where}conversation.", "state", v, (str,)) for v in states
        )
    if "keepalive" in data:
        keeps = data["keepalive"] if isinstance(data["keepalive"], list) else [data["keepalive"]]
        values["keepalive"] = tuple(
            _check_type(f"{where}conversation.", "keepalive", v, (bool,)) for v in keeps
        )
    return Conversation(**values)


def parse_sweep(axis: object, values: object, where: str = "") -> Sweep:
    if axis not in _AXIS_TYPES:
        raise ScenarioError(f"{where}unknown sweep axis {axis!r}; allowed: {', '.join(SWEEP_AXES)}")
    if axis == "http":  # versions as text, whether written 2 or "2"
        items = values.split(",") if isinstance(values, str) else values
        if isinstance(items, list):
            values = [http_text(v.strip() if isinstance(v, str) else v, where) for v in items]
    if isinstance(values, str):
        values = split_paths(values) if axis == "path" else [v.strip() for v in values.split(",")]
        values = [v for v in values if v.strip()]
        if _AXIS_TYPES[axis] == (bool,):
            flags = {"true": True, "false": False}
            if any(v.lower() not in flags for v in values):
                raise ScenarioError(f"{where}sweep values of {axis} must be true or false")
            values = [flags[v.lower()] for v in values]
        elif _AXIS_TYPES[axis] != (str,):
            try:
                values = [float(v) if "." in v else int(v) for v in values]
            except ValueError:
                raise ScenarioError(f"{where}sweep values of {axis} must be numbers") from None
    if not isinstance(values, list) or not values:
        raise ScenarioError(f"{where}sweep values must be a non-empty list")
    checked = tuple(_check_type(f"{where}sweep ", axis, v, _AXIS_TYPES[axis]) for v in values)
    if len(set(checked)) != len(checked):
        raise ScenarioError(f"{where}sweep values repeat: {list(values)}")
    return Sweep(axis=axis, values=checked)


def parse_sweep_flag(text: str) -> Sweep:
    """`--sweep concurrency=1,10,100`."""
    axis, sep, values = text.partition("=")
    if not sep:
        raise ScenarioError(f"--sweep takes AXIS=V1,V2,...; got {text!r}")
    return parse_sweep(axis.strip(), values)


def source_from_dict(data: dict[str, Any], where: str = "") -> SourceSpec:
    unknown = sorted(set(data) - set(_SOURCE_TYPES))
    if unknown:
        raise ScenarioError(
            f"{where}unknown [source] field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(_SOURCE_TYPES)}"
        )
    values = {k: _check_type(f"{where}source.", k, v, _SOURCE_TYPES[k]) for k, v in data.items()}
    if values.get("preset", "chat") not in PRESETS:
        raise ScenarioError(
            f"{where}unknown preset {values['preset']!r}; allowed: {', '.join(PRESETS)}"
        )
    if values.get("kind", "mock") not in SOURCE_KINDS:
        raise ScenarioError(
            f"{where}unknown source kind {values['kind']!r}; allowed: {', '.join(SOURCE_KINDS)}"
        )
    return SourceSpec(**values)


def parse_source_flag(text: str) -> dict[str, str]:
    """`--source mock|openai|trace:PATH`."""
    kind, _, path = text.partition(":")
    if kind == "trace" and path:
        return {"kind": "trace", "trace": path}
    if kind in ("mock", "openai") and not path:
        return {"kind": kind}
    raise ScenarioError(f"--source takes mock, openai or trace:PATH; got {text!r}")


def load_scenario(path: Path) -> Scenario:
    where = f"{path}: "
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"scenario file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}not valid TOML: {exc}") from None
    return scenario_from_dict(data, where)


def with_overrides(scenario: Scenario, **overrides: Any) -> Scenario:
    """Apply command-line flags (None means "not given"); source fields go to [source]."""
    top = {k: v for k, v in overrides.items() if v is not None and k not in SOURCE_FLAGS}
    source = {k: v for k, v in overrides.items() if v is not None and k in SOURCE_FLAGS}
    if "source" in source:
        source.update(parse_source_flag(source.pop("source")))
    if "transports" in top:
        top["transports"] = parse_transports(top["transports"])
    if "sweep" in top and isinstance(top["sweep"], str):
        top["sweep"] = parse_sweep_flag(top["sweep"])
    if "path" in top and len(split_paths(top["path"])) > 1:  # several paths: a sweep over them
        if "sweep" in top or scenario.sweep is not None:
            raise ScenarioError("a comma list of paths is a sweep over paths: drop the other sweep")
        top["sweep"] = parse_sweep("path", split_paths(top.pop("path")))
    if "stack" in top and "," in top["stack"]:  # several stacks: a sweep over them
        if "sweep" in top or scenario.sweep is not None:
            raise ScenarioError(
                "a comma list of stacks is a sweep over stacks: drop the other sweep"
            )
        top["sweep"] = parse_sweep("stack", top.pop("stack"))
    if "http" in top and "," in top["http"]:  # several versions: a sweep over them
        if "sweep" in top or scenario.sweep is not None:
            raise ScenarioError(
                "a comma list of HTTP versions is a sweep over http: drop the other sweep"
            )
        top["sweep"] = parse_sweep("http", top.pop("http"))
    elif "http" in top:
        top["http"] = http_text(top["http"].strip(), "--http: ")
    knobs = {k: top.pop(k) for k in list(top) if k in KNOB_NAMES}
    updated = replace(scenario, **top)
    for name, value in knobs.items():
        updated = updated.with_knob(name, value)
    if "preset" in source and updated.sweep is not None and updated.sweep.axis == "preset":
        raise ScenarioError("--preset conflicts with a sweep over presets; drop one of them")
    if "preset" in source or source.get("kind", updated.source.kind) != updated.source.kind:
        # a new preset or source kind replaces the file's source, then the flags apply
        updated = replace(updated, source=SourceSpec(**source))
    elif source:
        updated = replace(updated, source=replace(updated.source, **source))
    return validated(replace(updated, source=replace(updated.source, seed=updated.seed)))
