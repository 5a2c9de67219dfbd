"""Which token source a server runs, as one record that travels from a scenario to the
server process's command line (`to_args`) and back (`from_args`).

- `mock` (default): the embedded mock, a latency preset with overrides.
- `openai`: a live OpenAI-compatible endpoint (`base_url`, `model`); the key comes from
  the environment only (see `servers.sources.live`).
- `trace`: a recorded trace replayed exactly (`trace` path, `speed`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errors import SourceSettingsError
from servers.sources.mock import MockSource, TokenSource, profile_for

SOURCE_KINDS = ("mock", "openai", "trace")


@dataclass(frozen=True, slots=True)
class Flag:
    """One `SourceSpec` field as a flag of the server's command line."""

    field: str
    flag: str
    type: Callable[[str], Any] = str  # argparse's converter (str: the text itself)
    default: Any = None
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


# In the order `to_args` writes them. Defaults are the command line's, not SourceSpec's: a
# server started without --temperature leaves the temperature to the upstream.
FLAGS: tuple[Flag, ...] = (
    Flag("kind", "--source", default="mock", choices=SOURCE_KINDS),
    Flag("preset", "--preset", default="chat"),
    Flag("seed", "--seed", int, default=0),
    Flag("ttft_ms", "--ttft-ms", float),
    Flag("tokens_per_s", "--tokens-per-s", float),
    Flag("tokens_per_response", "--tokens-per-response", int),
    Flag("base_url", "--base-url"),
    Flag("model", "--model"),
    Flag("temperature", "--temperature", float),
    Flag("max_tokens", "--max-tokens", int),
    Flag("trace", "--trace"),
    Flag("speed", "--speed", float, default=1.0),
)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    kind: str = "mock"
    preset: str = "chat"
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    tokens_per_response: int | None = None
    seed: int = 0
    base_url: str | None = None
    model: str | None = None
    temperature: float | None = 0.0
    max_tokens: int | None = None
    trace: str | None = None
    speed: float = 1.0

    @property
    def live(self) -> bool:
        return self.kind == "openai"

    def validate(self) -> SourceSpec:
        if self.kind not in SOURCE_KINDS:
            raise SourceSettingsError(
                f"unknown source {self.kind!r}; allowed: {', '.join(SOURCE_KINDS)}"
            )
        if self.kind == "openai" and not (self.base_url and self.model):
            raise SourceSettingsError("the openai source needs --base-url URL and --model NAME")
        if self.kind == "trace":
            if not self.trace:
                raise SourceSettingsError(
                    "the trace source needs a trace file (--source trace:PATH)"
                )
            from servers.sources.trace import load_trace

            load_trace(Path(self.trace))  # a missing or malformed trace fails here, not later
        if not self.speed > 0:
            raise SourceSettingsError(f"speed must be > 0, got {self.speed}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise SourceSettingsError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.kind == "mock":
            profile_for(self.preset, self.ttft_ms, self.tokens_per_s, self.tokens_per_response)
        return self

    def describe(self) -> str:
        if self.kind == "openai":
            return f"live model {self.model} at {self.base_url}"
        if self.kind == "trace":
            return f"trace {self.trace} at speed {self.speed:g}"
        return f"mock preset {self.preset}"

    def to_args(self) -> list[str]:
        values = [(f.flag, getattr(self, f.field)) for f in FLAGS]
        return [str(part) for flag, value in values if value is not None for part in (flag, value)]


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    for f in FLAGS:
        parser.add_argument(f.flag, type=f.type, default=f.default, choices=f.choices)


def spec_from_args(args: argparse.Namespace) -> SourceSpec:
    return SourceSpec(**{f.field: getattr(args, f.dest) for f in FLAGS}).validate()


def build_source(spec: SourceSpec) -> TokenSource:
    spec.validate()
    if spec.kind == "openai":
        from servers.sources.live import OpenAISource

        assert spec.base_url and spec.model
        return OpenAISource(spec.base_url, spec.model, spec.temperature, spec.max_tokens)
    if spec.kind == "trace":
        from servers.sources.trace import TraceSource, load_trace

        assert spec.trace
        return TraceSource(load_trace(Path(spec.trace)), spec.speed)
    profile = profile_for(spec.preset, spec.ttft_ms, spec.tokens_per_s, spec.tokens_per_response)
    return MockSource(profile=profile, seed=spec.seed)
