"""The server under test as a real subprocess: bound, started, awaited, stopped by PID.

The driver binds the loopback listening socket itself and hands the descriptor to uvicorn
(`--fd`), so there is no window in which another process can take the port.
`running_servers` starts N of them at once on N ports (a scenario's `server_processes`), as
one `ServerGroup`: the driver pins each client shard to one of them.
`ChildProcess` and `stop_process` serve every process the harness starts (nginx, the relay,
locust) the same way. A server's CPU and memory are its whole process tree's (a stack's
workers: `harness.measure.process_tree`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict, Unpack

import httpx

from errors import ServerStartError
from harness.measure.process_tree import tree_cpu_seconds, tree_rss_bytes
from servers.settings import is_loopback_host
from servers.sources.spec import SourceSpec
from wire.webhook import SECRET_ENV as WEBHOOK_SECRET_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ChildProcess:
    """A process the harness started (and stops by its PID, with `stop_process`)."""

    process: subprocess.Popen[Any]

    @property
    def pid(self) -> int:
        return self.process.pid


def stop_process(
    process: subprocess.Popen[Any], grace_s: float, stop_signal: int = signal.SIGTERM
) -> None:
    """Stop a process we started, by its PID: `stop_signal` (SIGTERM), then SIGKILL after
    `grace_s`."""
    if process.poll() is None:
        process.send_signal(stop_signal)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace_s)


@dataclass
class ServerProcess(ChildProcess):
    base_url: str
    log_path: Path

    def cpu_seconds(self) -> float:
        """CPU seconds of the server and its worker processes (`process_tree`)."""
        return tree_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        """Resident bytes of the server and its worker processes (`process_tree`)."""
        return tree_rss_bytes(self.pid)


def check_loopback(host: str) -> None:
    if not is_loopback_host(host):
        raise ServerStartError(f"host {host!r} is not a loopback address; use 127.0.0.1 or ::1")


def bind_listener(host: str, port: int) -> socket.socket:
    check_loopback(host)
    if not 0 <= port <= 65535:
        raise ServerStartError(f"port {port} is out of range; allowed: 0 (any free port) to 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(4096)
    except OSError as exc:
        sock.close()
        raise ServerStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def shared_webhook_secret() -> str:
    """The secret webhook deliveries are signed with, shared by the server under test and
    the clients: `TOKENWIRE_WEBHOOK_SECRET`, or when it is unset a random one, set in this
    process's environment so that the server (a subprocess), the clients here and any
    process started later (locust) all inherit the same."""
    return os.environ.setdefault(WEBHOOK_SECRET_ENV, secrets.token_urlsafe(32))


class ServerOptions(TypedDict, total=False):
    """`start_server`'s optional keywords, for the functions that pass them on."""

    host: str
    port: int
    ready_timeout_s: float
    extra_args: tuple[str, ...]
    module: str


def start_server(
    spec: SourceSpec,
    log_path: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    ready_timeout_s: float = 30.0,
    extra_args: tuple[str, ...] = (),
    module: str = "servers.run",
) -> ServerProcess:
    """`python -m <module>` (the server, or a module serving the same app and flags) on a
    loopback socket bound here, once it answers /healthz."""
    sock = bind_listener(host, port)
    base_url = _url(sock)
    shared_webhook_secret()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # appended: a run that restarts its server (rounds, a server axis) keeps every log
    with sock, open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                module,
                "--fd",
                str(sock.fileno()),
                *spec.to_args(),
                *extra_args,
            ],
            pass_fds=(sock.fileno(),),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = ServerProcess(process=process, base_url=base_url, log_path=log_path)
    try:
        _wait_ready(server, ready_timeout_s)
    except BaseException:
        stop_server(server)
        raise
    return server


def _wait_ready(server: ServerProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                log = server.log_path.read_text(errors="replace").strip().splitlines()
                raise ServerStartError(
                    f"the server exited with status {server.process.returncode} at start-up: "
                    + (log[-1] if log else "no output")
                )
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise ServerStartError(f"the server did not answer /healthz within {timeout_s:g} s")


def stop_server(server: ServerProcess, grace_s: float = 5.0) -> None:
    """Stop the process we started, by its PID: SIGTERM, then SIGKILL after `grace_s`."""
    stop_process(server.process, grace_s)


@contextlib.contextmanager
def running_server(
    spec: SourceSpec, log_path: Path, **kwargs: Unpack[ServerOptions]
) -> Iterator[ServerProcess]:
    server = start_server(spec, log_path, **kwargs)
    try:
        yield server
    finally:
        stop_server(server)


class MeasuredServer(Protocol):
    """A server under test as the driver measures it (`ServerProcess`, or one in-process)."""

    base_url: str

    def cpu_seconds(self) -> float: ...
    def rss_bytes(self) -> int: ...


@dataclass(frozen=True)
class ServerGroup:
    """N servers under test as one: `base_urls` in order (the driver pins client shard i to
    server i % N, so every request of a stream, polls included, goes to one server), CPU
    and RSS summed over all. `base_url` is the first server's."""

    servers: tuple[MeasuredServer, ...]

    def __post_init__(self) -> None:
        if not self.servers:
            raise ValueError("a server group needs at least one server")

    def __len__(self) -> int:
        return len(self.servers)

    @property
    def base_url(self) -> str:
        return self.servers[0].base_url

    @property
    def base_urls(self) -> list[str]:
        return [server.base_url for server in self.servers]

    def cpu_seconds(self) -> float:
        return sum(server.cpu_seconds() for server in self.servers)

    def rss_bytes(self) -> int:
        return sum(server.rss_bytes() for server in self.servers)


def server_log_paths(log_dir: Path, count: int) -> list[Path]:
    """One server's log is `server.log`; N servers' are `server-0.log` ... `server-<N-1>.log`."""
    if count == 1:
        return [log_dir / "server.log"]
    return [log_dir / f"server-{k}.log" for k in range(count)]


@contextlib.contextmanager
def running_servers(
    spec: SourceSpec, log_dir: Path, count: int, **kwargs: Unpack[ServerOptions]
) -> Iterator[ServerGroup]:
    """`count` servers started at once (each as `start_server` starts one, on its own
    loopback port, logging to `server_log_paths`), stopped by PID when the context exits;
    if one fails to start, those that did are stopped and its error is raised."""
    shared_webhook_secret()  # once, before the threads: every server must get the same
    with contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(max_workers=count) as pool:
            futures = [
                pool.submit(start_server, spec, log, **kwargs)
                for log in server_log_paths(log_dir, count)
            ]
        servers = []
        for future in futures:  # all have finished: stop each one started, whatever failed
            if future.exception() is None:
                stack.callback(stop_server, future.result())
        for future in futures:
            servers.append(future.result())  # the first failure, if any, raises here
        yield ServerGroup(tuple(servers))
