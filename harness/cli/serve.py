"""`bench.py serve`: the server in the foreground, for curl, browsers and other clients."""

from __future__ import annotations

import argparse

from harness.cli.common import add_source_flags, port_number

NAME = "serve"
HELP = "run the server for curl, browsers and other clients"
DESCRIPTION = "Serve every transport on a loopback address until Ctrl-C."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (127.0.0.1 or ::1)")
    parser.add_argument("--port", type=port_number, default=8000, help="port (0: any free port)")
    add_source_flags(parser)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.serve import serve

    serve(args)
    return 0
