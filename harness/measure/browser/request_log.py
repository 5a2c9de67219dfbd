"""A test aid: the tokenwire server with every request it receives logged, so a test can
count what the server saw of each stream (an EventSource must make exactly one request).

`python -m harness.measure.browser.request_log --fd N [servers.run's flags]` serves the
same app as `python -m servers.run`, wrapped in `RequestLog`: one JSON line on stdout (the
server log) per HTTP request or WebSocket upgrade as it arrives,
`{"request": "http", "method": "GET", "path": "/v1/sse", "query": "seed=1&stream=ID",
"ns": <perf_counter_ns>}`. The benchmark never uses it: its server logs nothing per request.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from harness.measure.server_process import ServerProcess, running_server
from servers.sources.spec import SourceSpec


class RequestLog:
    """Pure ASGI middleware: logs each HTTP request and WebSocket upgrade, then passes it on."""

    def __init__(self, app: ASGIApp, out: IO[str]) -> None:
        self.app = app
        self.out = out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            line = {
                "request": scope["type"],
                "method": scope.get("method", "GET"),
                "path": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"),
                "ns": time.perf_counter_ns(),
            }
            self.out.write(json.dumps(line) + "\n")
            self.out.flush()
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> int:
    from servers.app import create_app
    from servers.run import serve_on_socket, webtransport_at
    from servers.settings import ServerSettings
    from servers.sources.spec import add_source_arguments, build_source, spec_from_args

    parser = argparse.ArgumentParser(prog="python -m harness.measure.browser.request_log")
    add_source_arguments(parser)
    parser.add_argument("--fd", type=int, required=True, help="the bound listening socket")
    ServerSettings.add_arguments(parser)
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    settings = webtransport_at(ServerSettings.from_args(args), sock)
    app = create_app(build_source(spec_from_args(args)), settings)
    serve_on_socket(RequestLog(app, sys.stdout), sock, settings)
    return 0


@contextlib.contextmanager
def logged_server(
    spec: SourceSpec, log_path: Path, extra_args: tuple[str, ...] = ()
) -> Iterator[ServerProcess]:
    """The server as `running_server` starts it, with the request log in `log_path`."""
    module = "harness.measure.browser.request_log"
    with running_server(spec, log_path, extra_args=extra_args, module=module) as server:
        yield server


def logged_requests(log_path: Path) -> list[dict[str, object]]:
    """Every request line of a request log (other lines, warnings, are skipped)."""
    lines = []
    for text in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if text.startswith('{"request"'):
            lines.append(json.loads(text))
    return lines


def eventsource_requests(log_path: Path) -> Counter[str]:
    """`GET /v1/sse` requests per stream (`?stream=`): what EventSource asked for."""
    counts: Counter[str] = Counter()
    for line in logged_requests(log_path):
        if line["method"] == "GET" and line["path"] == "/v1/sse":
            stream = parse_qs(str(line["query"])).get("stream", [""])[0]
            counts[stream] += 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
