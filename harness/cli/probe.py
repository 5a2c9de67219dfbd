"""`bench.py probe URL`: does an endpoint really stream, and if not, why?"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from errors import UsageError
from harness.cli.common import positive_float, positive_int
from harness.probe.request import KINDS, ProbeRequest

NAME = "probe"
HELP = "check whether an endpoint really streams, and name what stops it"
DESCRIPTION = (
    "Request URL a few times on a raw connection, stamp every network read, and report the "
    "status and headers that matter, TTFT, reads, events per read, inter-arrival times, E2E "
    "and the decoded text, then a verdict: `streams`, or the problems found, each with a "
    "stable code and its fix (the rules are in harness/probe/problems.py, the buffering rule "
    "in harness/probe/verdict.py). Exit 0: it streams (warnings allowed, unless --strict); "
    "1: problems; 2: bad usage or an unusable URL. Credentials come from the environment "
    "only: --header-from-env 'Authorization=Bearer $OPENAI_API_KEY'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="http://, https://, ws:// or wss:// URL")
    parser.add_argument(
        "--method", help="HTTP method (default: POST when --data is given, else GET)"
    )
    parser.add_argument(
        "--data",
        metavar="JSON|@FILE",
        help="JSON request body (sent with Content-Type: application/json), or @file holding "
        "it; for a WebSocket, the first message",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra request header (repeatable); credentials are refused here",
    )
    parser.add_argument(
        "--header-from-env",
        action="append",
        default=[],
        metavar="'NAME=... $VAR ...'",
        help="a header whose value names environment variables, e.g. "
        "'Authorization=Bearer $OPENAI_API_KEY' (repeatable); the values are never printed",
    )
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="auto",
        help="the stream's format (default auto: from Content-Type, vendor headers and the body)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=3,
        metavar="N",
        help="requests to make; timing verdicts use their medians (default 3)",
    )
    parser.add_argument(
        "--fresh-connections",
        action="store_true",
        help="send every repeat on a new connection (default: the repeats after the first "
        "reuse its keep-alive connection, as browsers and SDK clients do; a reused "
        "connection is what shows Nagle's delay)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        metavar="S",
        help="seconds allowed for each request, connect to last byte (default 60)",
    )
    parser.add_argument(
        "--path",
        metavar="PATH",
        help="probe through a path started in front of URL's host: nginx, "
        "net:PROFILE or net:rtt=..,bw=.., or both (nginx+net:4g) — e.g. to see an endpoint "
        "stream directly and behind a default nginx (http:// URLs)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--strict", action="store_true", help="warnings count as problems")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.probe.report import render_json, render_text
    from harness.probe.request import build_request
    from harness.probe.session import probe

    request = build_request(
        args.url,
        method=args.method,
        data=args.data,
        headers=args.header,
        env_headers=args.header_from_env,
        environ=os.environ,
        kind=args.kind,
        repeat=args.repeat,
        timeout_s=args.timeout,
        fresh=args.fresh_connections,
    )
    with contextlib.ExitStack() as stack:
        if args.path:
            request = stack.enter_context(through_path(request, args.path))
        result = probe(request, strict=args.strict)
    print(render_json(result) if args.json else render_text(result), flush=True)
    return 1 if result.judgement.problems else 0


@contextlib.contextmanager
def through_path(request: ProbeRequest, path_text: str) -> Iterator[ProbeRequest]:
    """The same request, sent through `path` started in front of the URL's host (with the
    URL's own Host header: an emulated network is not a different site)."""
    from harness.measure.paths import Endpoint, parse_path
    from harness.probe.request import parse_target

    target = request.target
    if target.tls:
        raise UsageError(f"--path needs an http:// or ws:// URL, got {target.url}")
    path = parse_path(path_text)
    host = f"[{target.host}]" if ":" in target.host else target.host
    with (
        tempfile.TemporaryDirectory(prefix="tokenwire-probe-") as work_dir,
        path.open(Endpoint(f"http://{host}:{target.port}"), Path(work_dir)) as front,
    ):
        if not front.base_url.startswith("http://"):
            raise UsageError(f"probe speaks HTTP/1.1 in the clear; {path_text} offers TLS")
        netloc = urlsplit(front.base_url).netloc
        moved = urlunsplit((target.scheme, netloc, *urlsplit(target.url)[2:4], ""))
        # the endpoint behind the path is the URL's: its Host, as a client of it would send
        front_target = replace(parse_target(moved), authority=target.host_header)
        yield replace(request, target=front_target)
