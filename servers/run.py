"""Run the tokenwire server under uvicorn: `python -m servers.run --fd N` (as the driver
starts it, on a socket it already bound) or `--host 127.0.0.1 --port P`."""

from __future__ import annotations

import argparse
import socket
import sys
from dataclasses import dataclass

import uvicorn

from servers.app import create_app
from servers.settings import ServerSettings
from servers.source import MockSource, SourceError, TokenSource, profile_for

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Which source to build: a mock preset with overrides (live sources come later)."""

    preset: str = "chat"
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    tokens_per_response: int | None = None
    seed: int = 0

    def to_args(self) -> list[str]:
        args = ["--preset", self.preset, "--seed", str(self.seed)]
        for flag, value in (
            ("--ttft-ms", self.ttft_ms),
            ("--tokens-per-s", self.tokens_per_s),
            ("--tokens-per-response", self.tokens_per_response),
        ):
            if value is not None:
                args += [flag, str(value)]
        return args


def build_source(spec: SourceSpec) -> TokenSource:
    profile = profile_for(spec.preset, spec.ttft_ms, spec.tokens_per_s, spec.tokens_per_response)
    return MockSource(profile=profile, seed=spec.seed)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", help="mock latency preset: instant, chat, reasoning")
    parser.add_argument("--ttft-ms", type=float, help="override: median time to first token")
    parser.add_argument("--tokens-per-s", type=float, help="override: median decode rate")
    parser.add_argument("--tokens-per-response", type=int, help="override: median length")
    parser.add_argument("--seed", type=int, help="seed of the mock's text and timing")


def uvicorn_config(app: object, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        ws_ping_interval=None,  # keep-alive pings would be counted as transport bytes
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servers.run")
    add_source_arguments(parser)
    parser.add_argument("--fd", type=int, help="serve on this already-bound listening socket")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--idle-timeout-s", type=float, default=ServerSettings().idle_timeout_s)
    parser.add_argument("--inject-delay-ms", type=float, default=0.0, help="test aid")
    parser.add_argument("--inject-pad-bytes", type=int, default=0, help="test aid")
    args = parser.parse_args(argv)
    spec = SourceSpec(
        preset=args.preset or "chat",
        ttft_ms=args.ttft_ms,
        tokens_per_s=args.tokens_per_s,
        tokens_per_response=args.tokens_per_response,
        seed=args.seed or 0,
    )
    try:
        source = build_source(spec)
    except SourceError as exc:
        print(f"servers.run: error: {exc}", file=sys.stderr)
        return 2
    settings = ServerSettings(
        idle_timeout_s=args.idle_timeout_s,
        inject_delay_ms=args.inject_delay_ms,
        inject_pad_bytes=args.inject_pad_bytes,
    )
    app = create_app(source, settings)
    if args.fd is None:
        uvicorn.Server(uvicorn_config(app, args.host, args.port)).run()
        return 0
    serve_on_socket(app, socket.socket(fileno=args.fd))
    return 0


def serve_on_socket(app: object, sock: socket.socket) -> None:
    """Serve on an already-bound socket. Not uvicorn's `fd=` option: that rebuilds the socket
    as AF_UNIX, so asyncio never sets TCP_NODELAY on accepted connections and every small
    response waits ~40 ms for a delayed ACK (measured: long polls returning every 44 ms)."""
    host, port = sock.getsockname()[:2]
    uvicorn.Server(uvicorn_config(app, host, port)).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
