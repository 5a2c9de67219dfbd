"""What every subcommand shares: the one-line error contract and argument types."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from errors import UsageError
from servers.sources.mock import PRESETS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCENARIO = PROJECT_ROOT / "scenarios" / "default.toml"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


def _number(text: str, kind: type[int] | type[float], what: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = int(_number(text, int, "a positive integer"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(_number(text, int, "an integer >= 0"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(_number(text, float, "a positive number"))
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def port_number(text: str) -> int:
    value = int(_number(text, int, "a port number"))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def existing_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return path


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("token source")
    group.add_argument(
        "--source",
        metavar="mock|openai|trace:PATH",
        help="mock (default: the embedded mock model), openai (a live OpenAI-compatible "
        "endpoint: give --base-url and --model; the key is read from OPENAI_API_KEY or "
        "TOKENWIRE_API_KEY), or trace:PATH (replay a trace recorded by `bench.py record`)",
    )
    group.add_argument("--base-url", metavar="URL", help="openai: the endpoint, e.g. .../v1")
    group.add_argument("--model", metavar="NAME", help="openai: the model name")
    group.add_argument(
        "--max-tokens", type=positive_int, metavar="N", help="openai: cap on tokens per response"
    )
    group.add_argument(
        "--speed", type=positive_float, metavar="X", help="trace: replay speed factor (2 = 2x)"
    )
    group.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="latency preset: instant (no delay: pure transport overhead), "
        "chat (hosted chat model), local (SmolLM2 on llama.cpp here, from a recorded "
        "trace), reasoning (long first-token wait)",
    )
    group.add_argument("--ttft-ms", type=float, metavar="MS", help="median time to first token")
    group.add_argument(
        "--tokens-per-s", type=positive_float, metavar="RATE", help="median decode rate"
    )
    group.add_argument(
        "--tokens-per-response",
        type=positive_int,
        metavar="N",
        help="median response length in tokens",
    )
    group.add_argument(
        "--seed",
        type=non_negative_int,
        metavar="S",
        help="seed of the mock's text and timing (request k uses seed k)",
    )


SOURCE_ARGS = (
    "source",
    "base_url",
    "model",
    "max_tokens",
    "speed",
    "preset",
    "ttft_ms",
    "tokens_per_s",
    "tokens_per_response",
    "seed",
)


def source_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The source flags as `harness.measure.scenario.with_overrides` keywords."""
    return {name: getattr(args, name) for name in SOURCE_ARGS}
