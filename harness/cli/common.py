"""What every subcommand shares: the one-line error contract, argument types, and the
flags several subcommands declare (each declared here once; what differs between the
subcommands, such as the help text, is a parameter)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeAlias

from errors import UsageError
from servers.sources.mock import PRESETS
from transports import TRANSPORTS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCENARIO = PROJECT_ROOT / "scenarios" / "default.toml"
DEFAULT_BASELINE = PROJECT_ROOT / "results" / "baseline.json"  # written by baseline, read by check

# a parser or an argument group: both declare flags the same way
Flags: TypeAlias = argparse._ActionsContainer


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


def non_negative_float(text: str) -> float:
    value = float(_number(text, float, "a number >= 0"))
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
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


def count_up_to(maximum: int, too_many: str) -> Callable[[str], int]:
    """An argument type: an integer 0..`maximum`. Above it the error is `too_many`, formatted
    with `maximum` and `value`."""

    def parse(text: str) -> int:
        value = non_negative_int(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(too_many.format(maximum=maximum, value=value))
        return value

    return parse


def add_run_dirs(parser: Flags, help_text: str, *, several: bool = True) -> None:
    """The run folder argument RUN_DIR: `run_dirs`, one or more, or (`several` False)
    `run_dir`, exactly one."""
    parser.add_argument(
        "run_dirs" if several else "run_dir",
        type=Path,
        nargs="+" if several else None,
        metavar="RUN_DIR",
        help=help_text,
    )


def add_out(
    parser: Flags,
    help_text: str,
    *,
    metavar: str = "DIR",
    default: Path | None = None,
    required: bool = False,
) -> None:
    """--out: where the command writes, a folder or (`metavar` FILE) a file."""
    parser.add_argument(
        "--out", type=Path, default=default, required=required, metavar=metavar, help=help_text
    )


def add_scenario(parser: Flags, help_text: str) -> None:
    """--scenario FILE: the scenario TOML that the other flags override."""
    parser.add_argument("--scenario", type=Path, metavar="FILE", help=help_text)


def add_transports(parser: Flags, purpose: str) -> None:
    """--transports: all, or a comma list of registered transports (to `purpose`)."""
    parser.add_argument(
        "--transports",
        metavar="all|a,b,...",
        help=f"transports to {purpose}: all, or a comma list of {', '.join(TRANSPORTS.names())}",
    )


def add_address(parser: Flags, *, port: int, host_help: str, port_help: str) -> None:
    """--host and --port: the loopback address a server listens on."""
    parser.add_argument("--host", default="127.0.0.1", help=host_help)
    parser.add_argument("--port", type=port_number, default=port, help=port_help)


def add_endpoint(parser: Flags, *, url_help: str, model_help: str, required: bool = False) -> None:
    """--base-url and --model: an OpenAI-compatible endpoint and the model to ask it for."""
    parser.add_argument("--base-url", required=required, metavar="URL", help=url_help)
    parser.add_argument("--model", required=required, metavar="NAME", help=model_help)


def add_max_tokens(parser: Flags, help_text: str, *, default: int | None = None) -> None:
    """--max-tokens N: a cap on the tokens of each answer from a live model."""
    parser.add_argument(
        "--max-tokens", type=positive_int, default=default, metavar="N", help=help_text
    )


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    """The "token source" group: which source, and flags overriding the scenario's."""
    group = parser.add_argument_group("token source")
    group.add_argument(
        "--source",
        metavar="mock|openai|trace:PATH",
        help="mock (default: the embedded mock model), openai (a live OpenAI-compatible "
        "endpoint: give --base-url and --model; the key is read from OPENAI_API_KEY or "
        "TOKENWIRE_API_KEY), or trace:PATH (replay a trace recorded by `bench.py record`)",
    )
    add_endpoint(
        group, url_help="openai: the endpoint, e.g. .../v1", model_help="openai: the model name"
    )
    add_max_tokens(group, "openai: cap on tokens per response")
    group.add_argument(
        "--speed", type=positive_float, metavar="X", help="trace: replay speed factor (2 = 2x)"
    )
    group.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="latency preset: instant (no delay: pure transport overhead), "
        "chat (hosted chat model), local (SmolLM2 on llama.cpp here, from a recorded "
        "trace), reasoning (long first-token wait), steady (no jitter: exactly 50 tokens/s "
        "after 100 ms, 100 tokens; for scale runs)",
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
