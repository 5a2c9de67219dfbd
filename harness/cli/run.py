"""`bench.py run`: benchmark transports against a token source."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from errors import ScenarioError
from harness.cli.common import (
    DEFAULT_SCENARIO,
    add_out,
    add_scenario,
    add_source_flags,
    add_transports,
    count_up_to,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    source_overrides,
)
from harness.measure.arrivals import ARRIVALS
from harness.measure.browser.capability import CLIENTS
from harness.measure.processes import AUTO, MAX_PROCESSES
from harness.measure.scenario import SWEEP_AXES, Scenario, load_scenario, with_overrides
from harness.measure.scenario.model import Conversation
from harness.measure.scenario.reading import conversation_from_dict
from servers.faults import FAULTS
from stacks import DEFAULT as DEFAULT_STACK
from stacks import DEFAULT_WORKERS, STACKS, STACKS_EXTRA
from transports import TRANSPORTS
from wire.framing import FRAMINGS

NAME = "run"
HELP = "benchmark transports against a token source"
DESCRIPTION = (
    "Start the server on a free loopback port, stream through each selected transport, and "
    "write results.json, summary.csv and charts to a run folder. Flags override the "
    "scenario file."
)


_count = count_up_to(MAX_PROCESSES, "at most {maximum} processes, got {value}")


def process_count(text: str) -> int:
    """`--server-processes` / `--client-processes`: 1 to the maximum, or auto (or 0)."""
    if text.strip().lower() == "auto":
        return AUTO
    try:
        return _count(text)
    except argparse.ArgumentTypeError as exc:
        allowed = f"allowed: auto, 0 for auto, 1 to {MAX_PROCESSES}"
        raise argparse.ArgumentTypeError(f"{exc} ({allowed})") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario(parser, "scenario TOML (default: scenarios/default.toml)")
    add_transports(parser, "measure")
    parser.add_argument(
        "--requests", type=positive_int, metavar="N", help="measured streams per transport"
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="C",
        help="streams in flight at once (with --rate: at most)",
    )
    parser.add_argument(
        "--rate",
        type=non_negative_float,
        metavar="R",
        help="open loop: R requests per second per transport arrive on a schedule whatever "
        "the server does, and a stream that finds --concurrency streams in flight waits for "
        "one to end, that wait counting in its TTFT and E2E (set --concurrency high: it caps "
        "streams in flight). 0 (default): closed loop, each of --concurrency workers starting "
        "its next stream when its last one ends, which slows the load down when the server "
        "slows and so hides queueing (coordinated omission)",
    )
    parser.add_argument(
        "--arrivals",
        choices=list(ARRIVALS),
        help="with --rate: poisson (random gaps, as independent users; seeded, so every run "
        "gets the same schedule; default) or constant (exactly 1/R apart)",
    )
    parser.add_argument(
        "--warmup",
        type=non_negative_int,
        metavar="N",
        help="unmeasured warm-up streams per transport",
    )
    add_transport_settings(parser)
    parser.add_argument(
        "--sweep",
        metavar="AXIS=V1,V2,...",
        help="run every value of one axis in one run folder; axes: "
        + ", ".join(SWEEP_AXES)
        + " (e.g. concurrency=1,10,100 or batch_ms=0,20,100)",
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
        "--server-fault",
        dest="server_faults",
        metavar="NAME[,NAME]",
        help="failure lab: the server makes these streaming mistakes on purpose ("
        + ", ".join(FAULTS)
        + "; docs/failures.md says what each does); fastapi@uvicorn only",
    )
    parser.add_argument(
        "--heartbeat-s",
        type=float,
        metavar="S",
        help="the server sends keep-alive bytes (SSE comments, blank NDJSON lines, WebSocket "
        "pings) after S seconds with nothing to send (default 0: none)",
    )
    talk = parser.add_argument_group(
        "conversations (agent loops: each request is a conversation of many turns)"
    )
    talk.add_argument(
        "--turns", type=int, metavar="N", help="turns per conversation (default 0: single streams)"
    )
    talk.add_argument(
        "--tool-call-ms",
        type=float,
        metavar="MS",
        help="the client runs each turn's tool this long before the next turn (default 300)",
    )
    talk.add_argument(
        "--context-bytes",
        type=int,
        metavar="B",
        help="how much the conversation grows each turn: the answer and the tool's result "
        "(default 4096)",
    )
    talk.add_argument(
        "--state",
        metavar="client|server[,...]",
        help="who keeps the conversation: client (re-sent whole each turn) or server (the "
        "previous turn's id, as previous_response_id); both, comma-separated, as variants",
    )
    talk.add_argument(
        "--keepalive",
        metavar="on|off[,...]",
        help="HTTP turns reuse connections (on) or open a new one each (off); both as variants",
    )
    parser.add_argument(
        "--client",
        choices=list(CLIENTS),
        help="who reads the streams: python (the project's clients, default) or browser "
        "(headless Chromium pages running EventSource, fetch, WebSocket; needs the [browser] "
        "extra and /usr/bin/chromium)",
    )
    parser.add_argument(
        "--server-processes",
        type=process_count,
        metavar="N|auto",
        help="servers under test: N processes on N loopback ports, each client shard sticking "
        "to one (loopback path and python client only); auto (or 0, the default): "
        "max(1, cores // 2)",
    )
    parser.add_argument(
        "--client-processes",
        type=process_count,
        metavar="M|auto",
        help="processes the clients run in: stream k in process k %% M, concurrency split "
        "evenly, results and CPU merged (python client only); auto (or 0, the default): "
        "max(1, cores // 2)",
    )
    add_pinning(parser)
    add_stack(
        parser,
        "A comma list compares stacks in one run (a sweep over stack: the server restarts on each)",
    )
    parser.add_argument(
        "--http",
        metavar="auto|best|1.1|2|3[,...]",
        help="the HTTP version the clients speak: auto (the path's: 2 through nginx-h2, else "
        "1.1; the default), 1.1, 2 (through nginx-h2, or h2c to a stack that speaks it), 3 "
        "(QUIC, to a stack that speaks it, on loopback or through net:), or best (the newest "
        "the stack and path allow, at each point: a sweep over paths then compares nginx-h2's "
        "HTTP/2 with the stack's HTTP/3). A comma list compares versions in one run (a sweep "
        "over http: the server restarts on each)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        metavar="N",
        help="run each transport's phase N times, in rounds (A B C, A B C, ...), so a machine "
        "that drifts mid-run hits every transport alike; the results record each round and "
        "its place in the order, intervals resample rounds as well as streams, and the "
        "report shows each round's figures and flags drift (default 1)",
    )
    parser.add_argument(
        "--ramp-s",
        type=non_negative_float,
        metavar="S",
        help="closed loop: start the --concurrency workers evenly over S seconds instead of "
        "all at once (streams of equal length otherwise arrive in waves)",
    )
    parser.add_argument(
        "--raw-client",
        action="store_true",
        default=None,
        help="after each transport, run the same streams through a minimal raw socket client "
        "that only counts tokens: the floor the client's CPU per token is compared with "
        "(sse, chunked, websocket; json framing)",
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


def add_transport_settings(parser: argparse.ArgumentParser) -> None:
    """The transports' own settings (framing, poll interval, long-poll wait, webhook batch
    window): flags of `run`, and of `capacity`, which searches at these settings."""
    parser.add_argument(
        "--framing",
        choices=list(FRAMINGS),
        help="message framing of push transports: "
        + "; ".join(
            f"{name} over {', '.join(TRANSPORTS.carrying(framing))}"
            for name, framing in FRAMINGS.items()
        )
        + " (another pair is an error)",
    )
    for knob in TRANSPORTS.knobs():  # each transport's own settings, as it declares them
        parser.add_argument(
            "--" + knob.name.replace("_", "-"),
            dest=knob.name,
            type=positive_float if knob.positive else non_negative_float,
            metavar=knob.name.rsplit("_", 1)[-1].upper(),
            help=f"{knob.help} (default {knob.default:g})",
        )


def add_pinning(parser: argparse.ArgumentParser) -> None:
    """`--server-cpus` / `--client-cpus`: flags of `run`, and of `capacity`, which measures
    streams per core on a core of their own with them."""
    parser.add_argument(
        "--server-cpus",
        metavar="LIST",
        help="pin the server processes to these CPUs (e.g. 0, 0,2 or 0-1), so that the "
        "clients cannot take their cores; the run records it (default: not pinned)",
    )
    parser.add_argument(
        "--client-cpus",
        metavar="LIST",
        help="pin the driver's clients (and the path's processes) to these CPUs, e.g. 1 "
        "beside --server-cpus 0 (default: not pinned)",
    )


def add_stack(parser: argparse.ArgumentParser, several: str) -> None:
    """`--stack`, `--workers`, `--threads`: flags of `run`, and of `capacity`, which
    searches each transport on each stack; `several` says what a comma list does."""
    known = "; ".join(
        f"{s.name} ({s.title}{', threaded' if s.threaded else ''}"
        f"{', the default' if s.name == DEFAULT_STACK else ''})"
        for s in STACKS
    )
    threaded = ", ".join(s.name for s in STACKS if s.threaded)
    group = parser.add_argument_group(
        "server stack (a web framework under an HTTP server: stacks.py)"
    )
    group.add_argument(
        "--stack",
        metavar="NAME[,NAME...]",
        help=f"the server stack, framework@server: {known}. {several}. A stack's packages "
        f"come with the [{STACKS_EXTRA}] extra: pip install -e '.[{STACKS_EXTRA}]'",
    )
    group.add_argument(
        "--workers",
        type=positive_int,
        metavar="W",
        help=f"a threaded stack's ({threaded}) worker processes; only {DEFAULT_WORKERS}: polls, "
        "resumes and timelines must reach the worker that holds the stream, and gunicorn "
        "does not route by stream (for more processes use --server-processes)",
    )
    group.add_argument(
        "--threads",
        type=positive_int,
        metavar="T",
        help=f"a threaded stack's ({threaded}) threads per worker; a stream holds one from "
        "start to end, so workers x threads bounds the streams in flight (default: 4 per "
        "server core, of --server-cpus when pinned)",
    )


def conversation_from_args(args: argparse.Namespace, base: Conversation) -> Conversation | None:
    """The scenario's `[conversation]` with the flags given over it; None: no flag given."""
    given: dict[str, object] = {}
    for name in ("turns", "tool_call_ms", "context_bytes"):
        if getattr(args, name, None) is not None:
            given[name] = getattr(args, name)
    if getattr(args, "state", None):
        given["state"] = [v.strip() for v in args.state.split(",") if v.strip()]
    if getattr(args, "keepalive", None):
        flags = {"on": True, "off": False, "true": True, "false": False}
        values = [v.strip().lower() for v in args.keepalive.split(",") if v.strip()]
        if any(v not in flags for v in values):
            raise ScenarioError(f"--keepalive takes on, off or on,off; got {args.keepalive!r}")
        given["keepalive"] = [flags[v] for v in values]
    if not given:
        return None
    merged = {**asdict(base), **given}
    merged["state"], merged["keepalive"] = list(merged["state"]), list(merged["keepalive"])
    return conversation_from_dict(merged)


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    scenario = load_scenario(args.scenario or DEFAULT_SCENARIO)
    return with_overrides(
        scenario,
        conversation=conversation_from_args(args, scenario.conversation),
        transports=args.transports,
        requests=args.requests,
        concurrency=args.concurrency,
        rate=args.rate,
        arrivals=args.arrivals,
        warmup=args.warmup,
        framing=args.framing,
        **{knob.name: getattr(args, knob.name) for knob in TRANSPORTS.knobs()},
        sweep=args.sweep,
        path=args.path,
        client=args.client,
        server_faults=args.server_faults and args.server_faults.replace(",", "+"),
        heartbeat_s=args.heartbeat_s,
        server_processes=args.server_processes,
        client_processes=args.client_processes,
        server_cpus=getattr(args, "server_cpus", None),
        client_cpus=getattr(args, "client_cpus", None),
        raw_client=getattr(args, "raw_client", None),
        ramp_s=getattr(args, "ramp_s", None),
        repeat=getattr(args, "repeat", None),
        stack=getattr(args, "stack", None),
        http=getattr(args, "http", None),
        workers=getattr(args, "workers", None),
        threads=getattr(args, "threads", None),
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
