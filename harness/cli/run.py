"""`bench.py run`: benchmark transports against a token source."""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import (
    DEFAULT_SCENARIO,
    add_out,
    add_scenario,
    add_source_flags,
    add_transports,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    source_overrides,
)
from harness.measure.browser.capability import CLIENTS
from harness.measure.scenario import Scenario, load_scenario, with_overrides
from wire.framing import FRAMINGS

NAME = "run"
HELP = "benchmark transports against a token source"
DESCRIPTION = (
    "Start the server on a free loopback port, stream through each selected transport, and "
    "write results.json, summary.csv and charts to a run folder. Flags override the "
    "scenario file."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario(parser, "scenario TOML (default: scenarios/default.toml)")
    add_transports(parser, "measure")
    parser.add_argument(
        "--requests", type=positive_int, metavar="N", help="measured streams per transport"
    )
    parser.add_argument(
        "--concurrency", type=positive_int, metavar="C", help="streams in flight at once"
    )
    parser.add_argument(
        "--warmup",
        type=non_negative_int,
        metavar="N",
        help="unmeasured warm-up streams per transport",
    )
    parser.add_argument(
        "--framing",
        choices=list(FRAMINGS),
        help="message framing of push transports: json and openai go over every transport, "
        "vercel-ui over sse, vercel-data over chunked, langchain over sse, chunked and "
        "websocket, raw over sse and chunked (another pair is an error)",
    )
    parser.add_argument(
        "--poll-interval-ms",
        type=positive_float,
        metavar="MS",
        help="short polling: time between polls",
    )
    parser.add_argument(
        "--long-poll-wait-s",
        type=positive_float,
        metavar="S",
        help="long polling: how long the server may hold a poll",
    )
    parser.add_argument(
        "--batch-ms",
        type=non_negative_float,
        metavar="MS",
        help="webhook: how long the server gathers tokens per POST (0: one POST per token)",
    )
    parser.add_argument(
        "--sweep",
        metavar="AXIS=V1,V2,...",
        help="run every value of one axis in one run folder; axes: concurrency, "
        "poll_interval_ms, long_poll_wait_s, batch_ms, framing, preset, path, "
        "streaming_headers (e.g. concurrency=1,10,100 or batch_ms=0,20,100)",
    )
    parser.add_argument(
        "--path",
        metavar="PATH[,PATH...]",
        help="what stands between clients and server: loopback (default), nginx, nginx-h2, "
        "net:PROFILE (lan, wifi, 4g, 3g, intercontinental) or net:rtt=80ms,bw=10mbit,... ; "
        "layers join with + (server side first: nginx+net:4g); a comma list compares paths "
        "in one run",
    )
    parser.add_argument(
        "--client",
        choices=list(CLIENTS),
        help="who reads the streams: python (the project's clients, default) or browser "
        "(headless Chromium pages running EventSource, fetch, WebSocket; needs the [browser] "
        "extra and /usr/bin/chromium)",
    )
    add_out(parser, "run folder (default: results/<UTC time>-<scenario>/)")
    parser.add_argument(
        "--quiet", action="store_true", help="print no progress and no table (errors still do)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summaries as JSON on stdout and nothing else there "
        "(progress and table go to stderr unless --quiet)",
    )
    add_source_flags(parser)


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
        batch_ms=args.batch_ms,
        sweep=args.sweep,
        path=args.path,
        client=args.client,
        **source_overrides(args),
    )


def run(args: argparse.Namespace, argv: list[str]) -> int:
    import orjson

    from harness.analyse.problems import no_tokens_failure
    from harness.analyse.results import default_run_dir
    from harness.pipeline import run_scenario
    from harness.present.console import make_console, summaries_json

    scenario = scenario_from_args(args)
    run_dir = args.out or default_run_dir(scenario)
    console = make_console(stderr=args.json, quiet=args.quiet)
    result = run_scenario(scenario, run_dir, console, argv)
    if args.json:
        data = {"run_dir": str(run_dir), **summaries_json(result)}
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    failure = no_tokens_failure(result, run_dir)  # a live upstream that produced no token
    if failure is not None:
        raise failure  # a UserError: one line naming the problem's code, exit status 2
    return 0
