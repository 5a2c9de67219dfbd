"""Run the tokenwire server: `python -m servers.run --fd N` (as the driver starts it, on a
socket it already bound) or `--host 127.0.0.1 --port P`; `--stack framework@server` picks
the stack (`stacks.py`; FastAPI on uvicorn by default), `--workers`/`--threads` size a
thread-per-request stack.

An address other than loopback (`--host 0.0.0.0`) is refused without a token (exit 2); with
one the server starts and warns on stderr that it is reachable from the network."""

from __future__ import annotations

import argparse
import gc
import ipaddress
import socket
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

import uvicorn
from starlette.types import ASGIApp

from errors import ServerSettingsError, SourceError, UserError
from servers.app import create_app
from servers.connection_guard import guarded_protocol, guarded_ws_protocol
from servers.cpus import pin, usable_cpus
from servers.faults import refuse_other_stack
from servers.settings import SERVER_TOKEN_ENV, ServerSettings, is_loopback_host
from servers.sources.spec import SourceSpec, add_source_arguments, build_source, spec_from_args
from servers.stacks.options import ServeOptions, add_stack_arguments, chosen_stack, http3_files
from servers.webtransport import check_port
from stacks import Stack, default_threads
from transports import load


def uvicorn_config(
    app: ASGIApp, host: str, port: int, settings: ServerSettings | None = None
) -> uvicorn.Config:
    settings = settings or ServerSettings()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(settings),
        ws=guarded_ws_protocol(settings),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        # keep-alive pings would be counted as transport bytes: only when asked for
        ws_ping_interval=settings.heartbeat_s or None,
        ws_max_size=settings.max_body_bytes,
    )


def exposure_warning(host: str, settings: ServerSettings) -> str | None:
    """None on loopback; the warning for a network-reachable address with tokens; refused
    (ServerSettingsError) without them."""
    if is_loopback_host(host):
        return None
    if not settings.tokens:
        raise ServerSettingsError(
            f"host {host} is reachable from the network and the server has no token: set one "
            f"(--token-file PATH or {SERVER_TOKEN_ENV}) or serve on 127.0.0.1"
        )
    return (
        f"serving on {host}, reachable from the network; requests need the bearer token, and "
        "a Host header other than loopback or this address needs --allowed-host"
    )


def answering_to_bound_address(settings: ServerSettings, host: str) -> ServerSettings:
    """The settings, with the address the server is bound to among the hosts it answers to
    (a client that calls it by that address sends it as Host); not a wildcard address."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return settings
    if address.is_loopback or address.is_unspecified:
        return settings
    return replace(settings, allowed_hosts=(*settings.allowed_hosts, str(address)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servers.run")
    add_source_arguments(parser)
    parser.add_argument("--fd", type=int, help="serve on this already-bound listening socket")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    add_stack_arguments(parser)
    parser.add_argument(
        "--cpus",
        metavar="LIST",
        help="run only on these CPUs (e.g. 0, or 0-1): the server, and every thread it starts",
    )
    ServerSettings.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.cpus is not None:  # first, so that every thread started later inherits it
        try:
            pin(usable_cpus(args.cpus))
        except UserError as exc:
            print(f"servers.run: error: --cpus: {exc}", file=sys.stderr)
            return 2
    given = None if args.fd is None else socket.socket(fileno=args.fd)
    host = args.host if given is None else str(given.getsockname()[0])
    try:
        stack = chosen_stack(args)
        settings = ServerSettings.from_args(args)
        refuse_other_stack(settings.faults, stack.name)
        warning = exposure_warning(host, settings)
        settings = answering_to_bound_address(settings, host)
        spec = spec_from_args(args)
        source = build_source(spec)
        sock = given or listening(args)
        settings = webtransport_at(settings, sock)
        if settings.webtransport_cert and args.http3_cert is not None:
            raise ServerSettingsError(
                "--http3-cert and --webtransport-cert would both answer on the UDP port of "
                "the listening port's number: give one"
            )
        check_port(settings)
    except (SourceError, UserError, OSError) as exc:
        print(f"servers.run: error: {exc}", file=sys.stderr)
        return 2
    if warning is not None:
        print(f"servers.run: warning: {warning}", file=sys.stderr, flush=True)
    options = ServeOptions(
        sock, settings, source, (), args.workers, args.threads, http3_files(args)
    )
    try:
        serve_stack(stack, options, spec)
    except UserError as exc:  # what the stack found it cannot do as asked (a taken UDP port)
        print(f"servers.run: error: {exc}", file=sys.stderr)
        return 2
    return 0


def webtransport_at(settings: ServerSettings, sock: socket.socket) -> ServerSettings:
    """The settings with WebTransport's address filled in (the listening socket's host and
    port number, on UDP) when it has a certificate; ServerSettingsError for a half."""
    if bool(settings.webtransport_cert) != bool(settings.webtransport_key):
        raise ServerSettingsError(
            "--webtransport-cert and --webtransport-key go together: give both or neither"
        )
    if not settings.webtransport_cert or settings.webtransport_address:
        return settings
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return replace(settings, webtransport_address=f"{shown}:{port}")


def serve_stack(stack: Stack, options: ServeOptions, spec: SourceSpec) -> None:
    """Serve with `stack`'s adapter until stopped; `options.argv` is filled in from the
    source's spec and the settings (a worker process of the stack's own rebuilds from it),
    and `threads` 0 is the default."""
    serve: Callable[[ServeOptions], None] = cast(Any, load(stack.adapter))
    argv = (*spec.to_args(), *options.settings.to_args())
    serve(replace(options, argv=argv, threads=options.threads or default_threads()))


def listening(args: argparse.Namespace) -> socket.socket:
    """A new socket to serve on, at --host and --port."""
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(4096)
    return sock


def serve_fastapi(options: ServeOptions) -> None:
    """fastapi@uvicorn: the FastAPI app under uvicorn."""
    app = create_app(options.source, options.settings)
    freeze_startup_objects()
    serve_on_socket(app, options.sock, options.settings)


def freeze_startup_objects() -> None:
    """Move everything that exists at start-up (the imported libraries, the app) out of the
    garbage collector's reach: full collections then scan only what the server made since.
    Measured (gc.callbacks, 100 WebSocket streams of the steady preset): a full collection
    paused the event loop 56 ms, every stream's next token left that much late, and the
    source gap error p99 was 18 ms; frozen, no collection took over 2 ms and the p99 was
    1.3 ms."""
    gc.collect()
    gc.freeze()


def serve_on_socket(
    app: ASGIApp, sock: socket.socket, settings: ServerSettings | None = None
) -> None:
    """Serve on an already-bound socket. Not uvicorn's `fd=` option: that rebuilds the socket
    as AF_UNIX, so asyncio never sets TCP_NODELAY on accepted connections and every small
    response waits ~40 ms for a delayed ACK (measured: long polls returning every 44 ms)."""
    host, port = sock.getsockname()[:2]
    uvicorn.Server(uvicorn_config(app, host, port, settings)).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
