#!/usr/bin/env python3
"""tokenwire: how should tokens get from the model to the user? Measure it.

python bench.py run [--scenario FILE] [--transports all|a,b] [--requests N] ...
python bench.py serve [--port P] [--preset NAME]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from clients import TRANSPORTS
from harness.results import ResultsError
from harness.scenario import Scenario, ScenarioError, load_scenario, with_overrides
from harness.server_process import ServerStartError
from servers.source import PRESETS, SourceError
from wire.framing import FRAMINGS

DEFAULT_SCENARIO = Path(__file__).resolve().parent / "scenarios" / "default.toml"


class UsageError(Exception):
    """Bad input from the command line: one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("token source (the embedded mock)")
    group.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="latency preset: instant (no delay: pure transport overhead), "
        "chat (hosted chat model), reasoning (long first-token wait)",
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


def build_parser() -> Parser:
    parser = Parser(
        prog="bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = commands.add_parser(
        "run",
        help="benchmark transports against a token source",
        description="Start the server on a free loopback port, stream through each selected "
        "transport, and write results.json, summary.csv and charts to a run folder. Flags "
        "override the scenario file.",
    )
    run.add_argument(
        "--scenario",
        type=Path,
        metavar="FILE",
        help="scenario TOML (default: scenarios/default.toml)",
    )
    run.add_argument(
        "--transports",
        metavar="all|a,b,...",
        help=f"transports to measure: all, or a comma list of {', '.join(TRANSPORTS)}",
    )
    run.add_argument(
        "--requests", type=positive_int, metavar="N", help="measured streams per transport"
    )
    run.add_argument(
        "--concurrency", type=positive_int, metavar="C", help="streams in flight at once"
    )
    run.add_argument(
        "--warmup",
        type=non_negative_int,
        metavar="N",
        help="unmeasured warm-up streams per transport",
    )
    run.add_argument("--framing", choices=list(FRAMINGS), help="message framing of push transports")
    run.add_argument(
        "--poll-interval-ms",
        type=positive_float,
        metavar="MS",
        help="short polling: time between polls",
    )
    run.add_argument(
        "--long-poll-wait-s",
        type=positive_float,
        metavar="S",
        help="long polling: how long the server may hold a poll",
    )
    run.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="run folder (default: results/<UTC time>-<scenario>/)",
    )
    add_source_flags(run)

    serve = commands.add_parser(
        "serve",
        help="run the server for curl, browsers and other clients",
        description="Serve every transport on a loopback address until Ctrl-C.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address (127.0.0.1 or ::1)")
    serve.add_argument("--port", type=port_number, default=8000, help="port (0: any free port)")
    add_source_flags(serve)
    return parser


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    scenario = load_scenario(args.scenario or DEFAULT_SCENARIO)
    return with_overrides(
        scenario,
        transports=args.transports,
        requests=args.requests,
        concurrency=args.concurrency,
        warmup=args.warmup,
        framing=args.framing,
        poll_interval_ms=args.poll_interval_ms,
        long_poll_wait_s=args.long_poll_wait_s,
        seed=args.seed,
        preset=args.preset,
        ttft_ms=args.ttft_ms,
        tokens_per_s=args.tokens_per_s,
        tokens_per_response=args.tokens_per_response,
    )


def command_run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.console import make_console
    from harness.results import default_run_dir
    from harness.runner import run_scenario

    scenario = scenario_from_args(args)
    run_dir = args.out or default_run_dir(scenario)
    run_scenario(scenario, run_dir, make_console(), argv)
    return 0


def command_serve(args: argparse.Namespace) -> int:
    from harness.serve import serve

    serve(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        if args.command == "run":
            return command_run(args, argv)
        return command_serve(args)
    except (UsageError, ScenarioError, SourceError, ServerStartError, ResultsError) as exc:
        message = str(exc)
        prefix = "" if message.startswith("bench.py") else "bench.py: error: "
        print(prefix + message, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
