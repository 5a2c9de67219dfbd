"""The one place a server stack is named.

A stack is a web framework under an HTTP server, `framework@server`: the same token source,
generations, resume, limits and access rules (the stack-neutral core under `servers/`),
written the way that framework's users write streaming code and served by that server, so
that its cost per token is the stack's real cost. Each entry names its adapter, a module
(a `serve(options)` function, mostly in `servers/stacks/`) that runs the server on the
listening socket the driver bound, and says what it can do. Everything else reads this registry: the
`--stack` flag and scenario field, the sweep and capacity axes, `servers.run`.

Adding a stack is one `Stack(...)` line here plus its adapter module.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass

from errors import UsageError
from transports import Transport

DEFAULT = "fastapi@uvicorn"
STACKS_EXTRA = "stacks"  # pip install -e '.[stacks]'


@dataclass(frozen=True, slots=True)
class Stack:
    name: str  # framework@server, as in results, flags and scenario files
    title: str  # in charts and tables
    adapter: str  # "package.module:function": its `serve(ServeOptions)` runs the server
    packages: tuple[str, ...]  # import names it needs (a missing one: a one-line error)
    threaded: bool = False  # thread-per-request workers: `workers` and `threads` apply
    http_versions: tuple[str, ...] = ("1.1",)  # what its server speaks to clients
    colour: str = "#1f77b4"  # in the stack charts
    neutral: bool = True  # serves the transports' stack-neutral routes (not FastAPI routers)

    def missing_packages(self) -> tuple[str, ...]:
        return tuple(p for p in self.packages if importlib.util.find_spec(p) is None)

    def cannot_carry(self, transport: Transport) -> str | None:
        """Why this stack cannot serve `transport` (one line), or None when it can: a stack
        of the neutral core serves the transports that declare stack-neutral routes."""
        if self.neutral and transport.routes is None:
            return (
                f"stack {self.name} cannot carry {transport.name}: the transport has no "
                "stack-neutral routes (it is served by FastAPI routers only); use a fastapi@ stack"
            )
        return None

    def check_installed(self) -> None:
        """UsageError, in one line naming the extra, when a package it needs is missing."""
        missing = self.missing_packages()
        if missing:
            raise UsageError(
                f"stack {self.name} needs {', '.join(missing)}: pip install -e '.[{STACKS_EXTRA}]'"
            )


@dataclass(frozen=True, slots=True)
class StackRegistry:
    stacks: tuple[Stack, ...]

    def __iter__(self) -> Iterator[Stack]:
        return iter(self.stacks)

    def __contains__(self, name: object) -> bool:
        return any(s.name == name for s in self.stacks)

    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stacks)

    def get(self, name: str) -> Stack:
        for stack in self.stacks:
            if stack.name == name:
                return stack
        raise UsageError(f"unknown stack {name!r}; known: {', '.join(self.names())}")


STACKS = StackRegistry(
    (
        Stack(
            DEFAULT,
            "FastAPI on uvicorn",
            "servers.run:serve_fastapi",
            ("fastapi", "uvicorn"),
            colour="#1f77b4",
            neutral=False,
        ),
        Stack(
            "asgi@uvicorn",
            "bare ASGI on uvicorn",
            "servers.stacks.asgi_app:serve_uvicorn",
            ("uvicorn",),
            colour="#ff7f0e",
        ),
        Stack(
            "fastapi@granian",
            "FastAPI on granian",
            "servers.stacks.granian_server:serve_fastapi",
            ("fastapi", "granian"),
            colour="#2ca02c",
            neutral=False,
        ),
        Stack(
            "asgi@granian",
            "bare ASGI on granian",
            "servers.stacks.granian_server:serve_asgi",
            ("granian",),
            colour="#d62728",
        ),
        Stack(
            "fastapi@hypercorn",
            "FastAPI on hypercorn",
            "servers.stacks.hypercorn_server:serve_fastapi",
            ("fastapi", "hypercorn"),
            http_versions=("1.1", "2", "3"),
            colour="#9467bd",
            neutral=False,
        ),
        Stack(
            "flask@gunicorn",
            "Flask on gunicorn (gthread)",
            "servers.stacks.flask_gunicorn:serve",
            ("flask", "gunicorn", "flask_sock", "flask_cors"),
            threaded=True,
            colour="#8c564b",
        ),
        Stack(
            "aiohttp",
            "aiohttp's own server",
            "servers.stacks.aiohttp_server:serve",
            ("aiohttp",),
            colour="#e377c2",
        ),
    )
)


def default_threads(cpus: int | None = None) -> int:
    """gunicorn's advice for its gthread worker: 2-4 threads per core; we take 4 per core
    of the machine (streams hold a thread each, so the upper end)."""
    return 4 * (cpus or os.cpu_count() or 1)


DEFAULT_WORKERS = 1  # one process: polls, resumes and timelines must find the stream's worker
