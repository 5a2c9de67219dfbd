"""`bench.py serve`: the server in the foreground, for curl, browsers and other clients."""

from __future__ import annotations

import argparse

from harness.cli.common import add_address, add_source_flags, source_overrides
from harness.measure.scenario import Scenario, with_overrides
from harness.measure.server_process import bind_listener
from harness.present.console import make_console
from servers.faults import refuse_other_stack
from servers.settings import ServerSettings
from servers.sources.spec import build_source
from servers.stacks.options import add_stack_arguments, chosen_stack, http3_files
from transports import TRANSPORTS

NAME = "serve"
HELP = "run the server for curl, browsers and other clients"
DESCRIPTION = "Serve every transport on a loopback address until Ctrl-C."
JSON = "-H 'content-type: application/json'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_address(
        parser,
        port=8000,
        host_help="loopback address (127.0.0.1 or ::1)",
        port_help="port (0: any free port)",
    )
    add_source_flags(parser)
    add_stack_arguments(parser, workers=False)
    ServerSettings.add_arguments(parser)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    serve(args)
    return 0


def serve(args: argparse.Namespace) -> None:
    """Build the source, bind, print how to call each transport, serve until Ctrl-C."""
    stack = chosen_stack(args)
    settings = ServerSettings.from_args(args)
    refuse_other_stack(settings.faults, stack.name)
    overrides = source_overrides(args)
    overrides["seed"] = overrides["seed"] or 0
    spec = with_overrides(Scenario(), **overrides).source
    source = build_source(spec)
    sock = bind_listener(args.host, args.port)
    host, port = sock.getsockname()[:2]
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    console = make_console()
    console.print(
        f"[bold]tokenwire server[/] on {base} ({spec.describe()}, {stack.name}); Ctrl-C stops it",
        highlight=False,
    )
    for transport in TRANSPORTS:
        console.print(f"  {transport.name:<10} {transport.endpoint}")
    console.print(
        "try:\n"
        f"  curl -N -X POST '{base}/v1/sse' {JSON} -d '{{\"seed\": 1}}'\n"
        f"  curl -N -X POST '{base}/v1/chunked?framing=openai' {JSON} -d '{{\"seed\": 1}}'\n"
        f"  curl -X POST '{base}/v1/streams' {JSON} -d '{{\"seed\": 1}}'\n"
        f"  curl '{base}/v1/streams/ID?offset=0'   # ID from the line above\n"
        f"  browser: new EventSource('{base}/v1/sse?seed=1')\n"
        f"  any OpenAI client: base_url='{base}/v1'",
        soft_wrap=True,
    )
    files = http3_files(args)
    if files is not None:
        secure = base.replace("http://", "https://", 1)
        console.print(
            f"  HTTP/3 on UDP port {port}: curl --http3-only --cacert {files[0]} -N -X POST "
            f"'{secure}/v1/sse' {JSON} -d '{{\"seed\": 1}}'",
            soft_wrap=True,
        )
    # the server's own modules (FastAPI, uvicorn), imported only to serve: the other
    # commands, report and compare included, run without them
    from servers.run import serve_stack
    from servers.stacks.options import ServeOptions

    with sock:
        options = ServeOptions(sock, settings, source, (), 1, args.threads, files)
        serve_stack(stack, options, spec)
