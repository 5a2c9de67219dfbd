"""Scenarios: a declarative description of one benchmark run (TOML file + command-line flags).

```toml
name = "default"
description = "..."
transports = "all"            # or ["sse", "websocket"]
requests = 50                 # measured streams per transport
concurrency = 8               # streams in flight at once
warmup = 2                    # unmeasured streams per transport first
seed = 1                      # the mock's text and timing; request k uses seed k
framing = "json"              # json | openai (push transports; polling has its own envelope)
poll_interval_ms = 100        # short polling
long_poll_wait_s = 30         # long polling
stream_timeout_s = 120        # one stream must finish within this

[source]
preset = "chat"               # instant | chat | reasoning
ttft_ms = 350                 # optional overrides of the preset
tokens_per_s = 80
tokens_per_response = 100

[sweep]                       # optional: run every value of one axis in one run folder
axis = "concurrency"          # concurrency | poll_interval_ms | long_poll_wait_s | framing | preset
values = [1, 10, 50]

[inject]                      # test aid: a deliberate server-side regression
token_delay_ms = 5            # hold every token this long after the source emits it
pad_bytes = 0                 # add this many bytes of padding to every token message
```
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from clients import TRANSPORTS
from servers.run import SourceSpec
from servers.source import PRESETS, SourceError, profile_for
from wire.framing import FRAMINGS


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the field and what is allowed."""


SWEEP_AXES = ("concurrency", "poll_interval_ms", "long_poll_wait_s", "framing", "preset")
SweepValue = int | float | str


@dataclass(frozen=True, slots=True)
class Sweep:
    axis: str
    values: tuple[SweepValue, ...]


@dataclass(frozen=True, slots=True)
class Inject:
    """Deliberate regressions, for testing the regression check (never for real runs)."""

    token_delay_ms: float = 0.0
    pad_bytes: int = 0

    def server_args(self) -> tuple[str, ...]:
        args: tuple[str, ...] = ()
        if self.token_delay_ms:
            args += ("--inject-delay-ms", str(self.token_delay_ms))
        if self.pad_bytes:
            args += ("--inject-pad-bytes", str(self.pad_bytes))
        return args


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str = "default"
    description: str = ""
    transports: tuple[str, ...] = TRANSPORTS
    requests: int = 50
    concurrency: int = 8
    warmup: int = 2
    seed: int = 1
    framing: str = "json"
    poll_interval_ms: float = 100.0
    long_poll_wait_s: float = 30.0
    stream_timeout_s: float = 120.0
    source: SourceSpec = field(default_factory=SourceSpec)
    sweep: Sweep | None = None
    inject: Inject = field(default_factory=Inject)

    def at(self, value: SweepValue) -> Scenario:
        """This scenario at one point of its sweep."""
        assert self.sweep is not None
        if self.sweep.axis == "preset":
            return replace(self, source=SourceSpec(preset=str(value), seed=self.seed))
        return replace(self, **{self.sweep.axis: value})

    def validate(self) -> Scenario:
        for name in ("requests", "concurrency"):
            if getattr(self, name) < 1:
                raise ScenarioError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ScenarioError(f"warmup must be 0 or more, got {self.warmup}")
        if self.seed < 0:
            raise ScenarioError(f"seed must be 0 or more, got {self.seed}")
        for name in ("poll_interval_ms", "long_poll_wait_s", "stream_timeout_s"):
            if not getattr(self, name) > 0:
                raise ScenarioError(f"{name} must be a positive number, got {getattr(self, name)}")
        if not self.transports:
            raise ScenarioError("transports must name at least one transport")
        if self.framing not in FRAMINGS:
            raise ScenarioError(f"unknown framing {self.framing!r}; allowed: {', '.join(FRAMINGS)}")
        try:
            profile_for(
                self.source.preset,
                self.source.ttft_ms,
                self.source.tokens_per_s,
                self.source.tokens_per_response,
            )
        except SourceError as exc:
            raise ScenarioError(str(exc)) from None
        if self.inject.token_delay_ms < 0 or self.inject.pad_bytes < 0:
            raise ScenarioError("inject.token_delay_ms and inject.pad_bytes must be 0 or more")
        if self.sweep is not None:
            for value in self.sweep.values:
                replace(self.at(value), sweep=None).validate()
        return self

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["transports"] = list(self.transports)
        if self.sweep is not None:
            data["sweep"] = {"axis": self.sweep.axis, "values": list(self.sweep.values)}
        return data


def parse_transports(value: str | list[str]) -> tuple[str, ...]:
    """`all`, a comma-separated string, or a list of names; unknown names are an error."""
    if isinstance(value, str):
        if value.strip() == "all":
            return TRANSPORTS
        names = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = list(value)
    else:
        raise ScenarioError('transports must be "all", "a,b,..." or a list of names')
    unknown = [n for n in names if n not in TRANSPORTS]
    if unknown:
        raise ScenarioError(
            f"unknown transport(s) {', '.join(unknown)}; allowed: all, {', '.join(TRANSPORTS)}"
        )
    if not names:
        raise ScenarioError(f"no transport given; allowed: all, {', '.join(TRANSPORTS)}")
    return tuple(dict.fromkeys(names))


_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "description": (str,),
    "requests": (int,),
    "concurrency": (int,),
    "warmup": (int,),
    "seed": (int,),
    "framing": (str,),
    "poll_interval_ms": (int, float),
    "long_poll_wait_s": (int, float),
    "stream_timeout_s": (int, float),
}
_INJECT_TYPES: dict[str, tuple[type, ...]] = {"token_delay_ms": (int, float), "pad_bytes": (int,)}
_AXIS_TYPES: dict[str, tuple[type, ...]] = {
    "concurrency": (int,),
    "poll_interval_ms": (int, float),
    "long_poll_wait_s": (int, float),
    "framing": (str,),
    "preset": (str,),
}
_SOURCE_TYPES: dict[str, tuple[type, ...]] = {
    "preset": (str,),
    "ttft_ms": (int, float),
    "tokens_per_s": (int, float),
    "tokens_per_response": (int,),
}


def _check_type(where: str, key: str, value: Any, allowed: tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, allowed):
        kinds = " or ".join("number" if t is float else t.__name__ for t in allowed)
        raise ScenarioError(f"{where}{key} must be {kinds}, got {value!r}")
    return float(value) if float in allowed else value


def scenario_from_dict(data: dict[str, Any], where: str = "") -> Scenario:
    known = {f.name for f in fields(Scenario)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScenarioError(
            f"{where}unknown scenario field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "transports":
            values[key] = parse_transports(value)
        elif key == "source":
            if not isinstance(value, dict):
                raise ScenarioError(f"{where}[source] must be a table")
            values[key] = source_from_dict(value, where)
        elif key == "sweep":
            if not isinstance(value, dict) or set(value) != {"axis", "values"}:
                raise ScenarioError(f'{where}[sweep] needs exactly axis = "..." and values = [...]')
            values[key] = parse_sweep(value["axis"], value["values"], where)
        elif key == "inject":
            if not isinstance(value, dict) or not set(value) <= set(_INJECT_TYPES):
                raise ScenarioError(
                    f"{where}[inject] allows only {', '.join(_INJECT_TYPES)}, got {value!r}"
                )
            values[key] = Inject(
                **{
                    k: _check_type(f"{where}inject.", k, v, _INJECT_TYPES[k])
                    for k, v in value.items()
                }
            )
        else:
            values[key] = _check_type(where, key, value, _TYPES[key])
    scenario = Scenario(**values)
    return replace(scenario, source=replace(scenario.source, seed=scenario.seed))


def parse_sweep(axis: object, values: object, where: str = "") -> Sweep:
    if axis not in _AXIS_TYPES:
        raise ScenarioError(f"{where}unknown sweep axis {axis!r}; allowed: {', '.join(SWEEP_AXES)}")
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
        if _AXIS_TYPES[axis] != (str,):
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
    return SourceSpec(**values)


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
    source_keys = {"preset", "ttft_ms", "tokens_per_s", "tokens_per_response"}
    top = {k: v for k, v in overrides.items() if v is not None and k not in source_keys}
    source = {k: v for k, v in overrides.items() if v is not None and k in source_keys}
    if "transports" in top:
        top["transports"] = parse_transports(top["transports"])
    if "sweep" in top and isinstance(top["sweep"], str):
        top["sweep"] = parse_sweep_flag(top["sweep"])
    updated = replace(scenario, **top)
    if "preset" in source and updated.sweep is not None and updated.sweep.axis == "preset":
        raise ScenarioError("--preset conflicts with a sweep over presets; drop one of them")
    if source and "preset" in source:
        # a new preset replaces the file's preset and its overrides, then flags apply
        updated = replace(updated, source=SourceSpec(**source))
    elif source:
        updated = replace(updated, source=replace(updated.source, **source))
    return replace(updated, source=replace(updated.source, seed=updated.seed)).validate()
