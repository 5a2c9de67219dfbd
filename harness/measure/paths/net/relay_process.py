"""The relay (`relay.py`) as the harness's subprocess: its command line from a `NetSpec`,
started on a free port (a loopback socket bound here and inherited, or a fixed port inside
a namespace) once it prints `ready`, its statistics asked for with SIGUSR1, and stopped by
its PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from errors import ScenarioError, ServerStartError
from harness.measure.paths import Endpoint
from harness.measure.paths.net.namespace import Namespace
from harness.measure.paths.net.spec import NetSpec
from harness.measure.server_process import (
    PROJECT_ROOT,
    ChildProcess,
    bind_listener,
    stop_process,
)

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
STATS_TIMEOUT_S = 1.0
RELAY_MODULE = "harness.measure.paths.net.relay"  # run as `python -m`
NS_PORT = 8000  # the relay's port inside its own namespace (nothing else listens there)


@dataclass
class ReportingProcess(ChildProcess):
    """A helper process that writes its statistics to `stats_path` on SIGUSR1 and at exit
    (the relay, the forwarder)."""

    process: subprocess.Popen[str]
    stats_path: Path
    log_path: Path

    def stats(self, timeout_s: float = STATS_TIMEOUT_S) -> dict[str, Any] | None:
        """Its own statistics: asked for with SIGUSR1 while it runs."""
        if self.process.poll() is None:
            before = _mtime(self.stats_path)
            self.process.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + timeout_s
            while _mtime(self.stats_path) == before and time.monotonic() < deadline:
                time.sleep(0.01)
        try:
            return json.loads(self.stats_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


@dataclass
class RelayProcess(ReportingProcess):
    host: str = ""
    port: int = 0


def relay_figures(relay: RelayProcess | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """What a layer records of its relay while it runs (its PID and where it listens), and
    its statistics now (None when not running or unreadable)."""
    if relay is None:
        return {}, None
    return {"relay_pid": relay.pid, "relay_listen": f"{relay.host}:{relay.port}"}, relay.stats()


def final_stats(helper: ReportingProcess) -> dict[str, Any] | None:
    """Stop a helper by its PID and read the statistics it wrote as it exited."""
    stop_relay(helper)
    with contextlib.suppress(OSError, ValueError):
        stats: dict[str, Any] = json.loads(helper.stats_path.read_text(encoding="utf-8"))
        return stats
    return None


def endpoint_via(upstream: Endpoint, relay: RelayProcess) -> Endpoint:
    """`upstream`'s endpoint with the relay's address in place of its host and port."""
    netloc = f"[{relay.host}]:{relay.port}" if ":" in relay.host else f"{relay.host}:{relay.port}"
    parts = urlsplit(upstream.base_url)
    return Endpoint(
        urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
        http2=upstream.http2,
        ca_file=upstream.ca_file,
    )


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def upstream_address(upstream: Endpoint) -> tuple[str, str, int]:
    """(scheme, host, port) of what the relay forwards to."""
    parts = urlsplit(upstream.base_url)
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        raise ScenarioError(f"path layer net cannot relay to {upstream.base_url!r}")
    return parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def relay_command(
    spec: NetSpec, upstream: tuple[str, int], stats_path: Path, bucket: bool
) -> list[str]:
    """The relay's command line for `spec` in front of `upstream`; `bucket`: the relay's own
    token buckets shape (no tbf)."""
    host, port = upstream
    command = [
        sys.executable,
        "-m",
        RELAY_MODULE,
        "--upstream",
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "--delay-ms",
        repr(spec.delay_s * 1e3),
        "--rtt-ms",
        repr(spec.rtt_s * 1e3),
        "--jitter-ms",
        repr(spec.jitter_s * 1e3),
        "--loss",
        repr(spec.loss),
        "--seed",
        str(spec.seed),
        "--stats",
        str(stats_path),
        "--parent-pid",
        str(os.getpid()),
    ]
    if bucket:
        command += ["--down-bps", repr(spec.down_bps or 0.0), "--up-bps", repr(spec.up_bps or 0.0)]
    if spec.idle_s:
        command += ["--idle-s", repr(spec.idle_s)]
    if spec.hold_kib:
        command += ["--hold-kib", repr(spec.hold_kib)]
    return command


def spawn_helper(
    command: list[str], log_path: Path, pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen[str]:
    """A helper process (the relay, the forwarder): stdout piped for its `ready` line,
    stderr appended to `log_path`, in a session of its own."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            pass_fds=pass_fds,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # a Ctrl-C in the terminal goes to the harness only
        )


def start_relay(
    command: list[str],
    work_dir: Path,
    listen_host: str,
    netns: Namespace | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> RelayProcess:
    """The relay on a free port (a loopback socket bound here and inherited, or a fixed port
    in its own namespace), once it says it is ready; ServerStartError if it does not."""
    log_path = work_dir / "relay.log"
    stats_path = work_dir / "relay-stats.json"
    command = [*command]
    command[command.index("--stats") + 1] = str(stats_path)
    sock = None
    pass_fds: tuple[int, ...] = ()
    if netns is None:
        sock = bind_listener(listen_host, 0)
        command += ["--listen-fd", str(sock.fileno())]
        pass_fds = (sock.fileno(),)
    else:
        command += ["--listen", f"{listen_host}:{NS_PORT}", "--netns", str(netns.path)]
    with contextlib.ExitStack() as stack:
        if sock is not None:
            stack.enter_context(sock)
        process = spawn_helper(command, log_path, pass_fds)
    relay = RelayProcess(process, stats_path, log_path, listen_host, 0)
    try:
        line = ready_line(process, timeout_s)
    except BaseException:
        stop_relay(relay)
        raise
    fields = line.split()
    if len(fields) != 3 or fields[0] != "ready":
        stop_relay(relay)
        tail = log_path.read_text(errors="replace").strip().splitlines()
        raise ServerStartError(
            "the network relay did not start"
            + (f": {tail[-1]}" if tail else f" (status {process.returncode})")
        )
    relay.port = int(fields[2])
    return relay


def ready_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The first line a helper prints on stdout, or "" if none within `timeout_s`."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    if not ready:
        return ""
    return process.stdout.readline()


def stop_relay(relay: ReportingProcess, grace_s: float = STOP_TIMEOUT_S) -> None:
    """Stop the relay (or forwarder) we started, by its PID: SIGTERM, then SIGKILL after
    `grace_s`."""
    stop_process(relay.process, grace_s)
    if relay.process.stdout is not None:
        relay.process.stdout.close()
