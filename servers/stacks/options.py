"""What `servers.run` hands a stack's `serve`: the bound socket, the settings, the source,
and the arguments that rebuild them in a worker process of the stack's own."""

from __future__ import annotations

import argparse
import json
import os
import socket
from dataclasses import dataclass

from servers.settings import ServerSettings
from servers.sources.mock import TokenSource
from servers.sources.spec import add_source_arguments, build_source, spec_from_args

ARGS_ENV = "TOKENWIRE_STACK_ARGS"  # servers.run's arguments, for a worker process to rebuild


@dataclass(frozen=True, slots=True)
class ServeOptions:
    sock: socket.socket  # listening, bound by the driver (or by servers.run)
    settings: ServerSettings
    source: TokenSource
    argv: tuple[str, ...]  # servers.run's arguments, which rebuild the settings and source
    workers: int = 1
    threads: int = 1

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
