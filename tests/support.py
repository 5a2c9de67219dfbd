"""Helpers shared by test modules (importable because pytest's pythonpath includes tests/)."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeGuard

import psutil
import pytest

from clients.asyncio_io import AsyncStreamClient
from clients.blocking_io import BlockingClient
from clients.interface import ClientSettings
from harness.measure.paths.certificate import make_certificate
from harness.measure.server_process import ServerProcess, running_server
from servers.sources.spec import SourceSpec
from stacks import DEFAULT as DEFAULT_STACK
from transports import TRANSPORTS

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`python bench.py ARGS` as a user runs it, from the project folder."""
    return subprocess.run(
        [sys.executable, "bench.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


TRANSPORT_NAMES = TRANSPORTS.names()
# the transports the blocking driver (locust) runs: none over QUIC (it has no QUIC client)
BLOCKING_NAMES = tuple(t.name for t in TRANSPORTS if not t.quic)
FAST_POLLS = (("poll_interval_ms", 20.0),)  # clients' settings: short polls 20 ms apart


def splits(data: bytes, step: int = 1) -> Iterator[list[bytes]]:
    """The bytes whole, byte by byte, and cut in two at every `step`-th position."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for cut in range(1, len(data), step):
        yield [data[:cut], data[cut:]]


def all_known(stamps: Sequence[int | None]) -> TypeGuard[Sequence[int]]:
    """Every stamp is known (`assert all_known(record.emit_ns)` narrows the stamps' type)."""
    return None not in stamps


def async_client(transport: str, settings: ClientSettings) -> AsyncStreamClient:
    """The asyncio client of a registered transport, as the driver makes it."""
    return AsyncStreamClient(transport, TRANSPORTS.get(transport).exchange, settings)


def blocking_client(transport: str, settings: ClientSettings) -> BlockingClient:
    """The blocking client of a registered transport, as the locust plugin makes it."""
    return BlockingClient(transport, TRANSPORTS.get(transport).exchange, settings)


STACK_ENV = "TOKENWIRE_TEST_STACK"  # the stack the server suites run against (.ci/run)


def stack_under_test() -> str:
    """The stack under test: `TOKENWIRE_TEST_STACK`, else the default."""
    return os.environ.get(STACK_ENV) or DEFAULT_STACK


def stack_args() -> tuple[str, ...]:
    """servers.run's flags for the stack under test (none for the default)."""
    stack = stack_under_test()
    return () if stack == DEFAULT_STACK else ("--stack", stack)


def serve(
    tmp_path_factory: pytest.TempPathFactory, name: str, spec: SourceSpec, *server_args: str
) -> Iterator[ServerProcess]:
    """A real server process for a fixture, its log in a fresh temporary folder, on the
    stack under test, answering WebTransport too (unless it answers HTTP/3: clients trust
    `quic_ca()`)."""
    log = tmp_path_factory.mktemp(name) / "server.log"
    quic = () if "--http3-cert" in server_args else webtransport_args()
    with running_server(spec, log, extra_args=(*stack_args(), *quic, *server_args)) as process:
        yield process


@functools.cache
def quic_files() -> tuple[str, str]:
    """The tests' one throwaway certificate for QUIC (WebTransport, HTTP/3) and its key."""
    folder = tempfile.mkdtemp(prefix="tokenwire-quic-")
    atexit.register(shutil.rmtree, folder, True)
    cert, key = make_certificate(Path(folder))
    return str(cert), str(key)


def quic_ca() -> str:
    """The certificate a client trusts to speak QUIC to a test server (`ca_file`)."""
    return quic_files()[0]


def webtransport_args() -> tuple[str, ...]:
    cert, key = quic_files()
    return ("--webtransport-cert", cert, "--webtransport-key", key)


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and its descendants (granian, gunicorn: the server's connections are its
    worker processes')."""
    process = psutil.Process(pid)
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return [process]


class NoServer:
    """A stand-in for the server under test where no stream reaches it: no CPU, no memory."""

    base_url = "http://127.0.0.1:9"

    def cpu_seconds(self) -> float:
        return 0.0

    def rss_bytes(self) -> int:
        return 0
