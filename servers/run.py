"""Run the tokenwire server under uvicorn: `python -m servers.run --fd N` (as the driver
starts it, on a socket it already bound) or `--host 127.0.0.1 --port P`."""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn

from errors import SourceError
from servers.app import create_app
from servers.connection_guard import guarded_protocol
from servers.settings import ServerSettings
from servers.sources.spec import add_source_arguments, build_source, spec_from_args


def uvicorn_config(
    app: object, host: str, port: int, settings: ServerSettings | None = None
) -> uvicorn.Config:
    settings = settings or ServerSettings()
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        http=guarded_protocol(settings.request_timeout_s),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        ws_ping_interval=None,  # keep-alive pings would be counted as transport bytes
        ws_max_size=settings.max_body_bytes,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servers.run")
    add_source_arguments(parser)
    parser.add_argument("--fd", type=int, help="serve on this already-bound listening socket")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    ServerSettings.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        source = build_source(spec_from_args(args))
    except SourceError as exc:
        print(f"servers.run: error: {exc}", file=sys.stderr)
        return 2
    settings = ServerSettings.from_args(args)
    app = create_app(source, settings)
    if args.fd is None:
        uvicorn.Server(uvicorn_config(app, args.host, args.port, settings)).run()
        return 0
    serve_on_socket(app, socket.socket(fileno=args.fd), settings)
    return 0


def serve_on_socket(
    app: object, sock: socket.socket, settings: ServerSettings | None = None
) -> None:
    """Serve on an already-bound socket. Not uvicorn's `fd=` option: that rebuilds the socket
    as AF_UNIX, so asyncio never sets TCP_NODELAY on accepted connections and every small
    response waits ~40 ms for a delayed ACK (measured: long polls returning every 44 ms)."""
    host, port = sock.getsockname()[:2]
    uvicorn.Server(uvicorn_config(app, host, port, settings)).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
