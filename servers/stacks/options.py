"""What `servers.run` hands a stack's `serve`: the bound socket, the settings, the source,
and the arguments that rebuild them in a worker process of the stack's own."""

from __future__ import annotations

import argparse
import json
import os
import socket
from dataclasses import dataclass

from errors import UsageError
from servers.settings import ServerSettings
from servers.sources.mock import TokenSource
from servers.sources.spec import add_source_arguments, build_source, spec_from_args
from stacks import DEFAULT, DEFAULT_WORKERS, STACKS, Stack

ARGS_ENV = "TOKENWIRE_STACK_ARGS"  # servers.run's arguments, for a worker process to rebuild


@dataclass(frozen=True, slots=True)
class ServeOptions:
    sock: socket.socket  # listening, bound by the driver (or by servers.run)
    settings: ServerSettings
    source: TokenSource
    argv: tuple[str, ...]  # servers.run's arguments, which rebuild the settings and source
    workers: int = 1
    threads: int = 1
    # HTTP/3 as well, on the UDP port of the socket's number: (certificate, key) PEM files
    http3: tuple[str, str] | None = None

    @property
    def host(self) -> str:
        return str(self.sock.getsockname()[0])

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])


def rebuilt(argv: list[str]) -> tuple[TokenSource, ServerSettings]:
    """The source and settings that servers.run's arguments give, in a worker process."""
    parser = argparse.ArgumentParser(add_help=False)
    add_source_arguments(parser)
    ServerSettings.add_arguments(parser)
    args, _ = parser.parse_known_args(argv)
    return build_source(spec_from_args(args)), ServerSettings.from_args(args)


def args_env(argv: tuple[str, ...]) -> str:
    """servers.run's arguments as `ARGS_ENV` holds them (JSON: no NUL in an environment)."""
    return json.dumps(list(argv))


def rebuilt_from_env() -> tuple[TokenSource, ServerSettings]:
    return rebuilt(json.loads(os.environ.get(ARGS_ENV) or "[]"))


def add_stack_arguments(parser: argparse.ArgumentParser, workers: bool = True) -> None:
    """`--stack`, `--threads` and (with `workers`) `--workers`: servers.run's and serve's."""
    parser.add_argument(
        "--stack",
        default=DEFAULT,
        choices=STACKS.names(),
        help=f"the framework and HTTP server to serve with (default {DEFAULT})",
    )
    if workers:
        parser.add_argument(
            "--workers",
            type=int,
            default=DEFAULT_WORKERS,
            help="worker processes of a threaded stack (flask@gunicorn); only 1 is supported",
        )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads per worker of a threaded stack (default: 4 per core, gunicorn's advice)",
    )
    parser.add_argument(
        "--http3-cert",
        metavar="PEM",
        help="answer HTTP/3 too, on the UDP port of the listening port's number, with this "
        "certificate (a stack that speaks HTTP/3 only; with --http3-key)",
    )
    parser.add_argument("--http3-key", metavar="PEM", help="the --http3-cert's private key")


def chosen_stack(args: argparse.Namespace) -> Stack:
    """The stack the flags name, installed and sized as it can be (UsageError otherwise)."""
    stack = STACKS.get(args.stack)
    stack.check_installed()
    workers = getattr(args, "workers", DEFAULT_WORKERS)
    if not stack.threaded and (workers != DEFAULT_WORKERS or args.threads):
        raise UsageError(f"--workers and --threads size a threaded stack; {stack.name} is not")
    if workers != DEFAULT_WORKERS:
        raise UsageError(
            "--workers must be 1: polls, resumes and timelines must reach the worker that "
            "holds their stream, and gunicorn does not route by stream"
        )
    if args.threads < 0:
        raise UsageError(f"--threads must be 1 or more, got {args.threads}")
    if (args.http3_cert is None) != (args.http3_key is None):
        raise UsageError("--http3-cert and --http3-key go together: give both or neither")
    if args.http3_cert is not None and "3" not in stack.http_versions:
        speaking = [s.name for s in STACKS if "3" in s.http_versions]
        raise UsageError(f"stack {stack.name} does not speak HTTP/3; {', '.join(speaking)} does")
    return stack


def http3_files(args: argparse.Namespace) -> tuple[str, str] | None:
    """(certificate, key) from --http3-cert and --http3-key, or None: no HTTP/3."""
    if args.http3_cert is None:
        return None
    return str(args.http3_cert), str(args.http3_key)
