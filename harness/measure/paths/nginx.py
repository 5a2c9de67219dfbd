"""nginx in front of the server: the reverse proxy most deployments put there.

`nginx` proxies plain HTTP/1.1; `nginx-h2` is the same proxy answering clients over TLS and
HTTP/2 (a throwaway self-signed certificate for 127.0.0.1, made at start, which the clients
are told to trust). Debian's nginx runs in the foreground from a configuration generated
into the layer's folder: its pid file, temporary folders, error and access logs all live
there, nothing is written to a system path. It is stopped by its PID (SIGQUIT, a graceful
shutdown, then SIGKILL after `STOP_TIMEOUT_S`).

The configuration is a stock reverse proxy, deliberately: a keep-alive HTTP/1.1 upstream,
the WebSocket upgrade passed through on /v1/ws, long read timeouts for long streams, and
`proxy_buffering` left at nginx's default (on). A push response therefore streams through
only when the server asks for it with `X-Accel-Buffering: no` (tokenwire's push responses
do, unless the server runs with `--streaming-headers 0`); without it nginx holds the body
until a buffer fills or the response ends, and the first token arrives with the last.

nginx 1.22 (Debian 12) cannot carry a WebSocket over HTTP/2 (RFC 8441 is not implemented),
so on `nginx-h2` the WebSocket transport speaks HTTP/1.1 over TLS, which is what a browser
does against it too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

from errors import ScenarioError, ServerStartError
from harness.measure.paths import Endpoint, PathLayer
from harness.measure.paths.certificate import CERT_FILE, KEY_FILE, make_certificate
from harness.measure.paths.net.namespace import emulator_addresses
from harness.measure.server_process import ChildProcess, stop_process
from transports import TRANSPORTS

DEBIAN_NGINX = Path("/usr/sbin/nginx")
INSTALL_HINT = "nginx is not installed; install Debian's package: apt-get install nginx"
HOST = "127.0.0.1"
CONFIG = "nginx.conf"
ERROR_LOG = "error.log"
ACCESS_LOG = "access.log"
READY_PATH = "/.tokenwire-nginx-ready"  # answered by nginx itself: up, whatever the upstream

WORKER_PROCESSES = 1  # two shared cores: one worker proxies every benchmark stream easily
WORKER_CONNECTIONS = 4096  # two per proxied stream (client side and upstream side)
UPSTREAM_KEEPALIVE = 64  # idle upstream connections each worker keeps open
KEEPALIVE_REQUESTS = 100_000  # per connection, both sides: no reconnects mid-benchmark
READ_TIMEOUT_S = 3600  # long streams, long polls: nginx must never cut them
HTTP2_MAX_STREAMS = 512  # concurrent streams per client connection on nginx-h2
WORKER_SHUTDOWN_TIMEOUT_S = 5  # a graceful stop closes connections still open after this

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3  # a free port can be taken between choosing it and nginx binding it
HTTP2_ON_DIRECTIVE = (1, 25, 1)  # from this version `http2 on;`, before it `listen ... http2`


def find_nginx() -> Path:
    """Debian's nginx, else whatever `nginx` is on PATH; ServerStartError when neither."""
    if DEBIAN_NGINX.is_file() and os.access(DEBIAN_NGINX, os.X_OK):
        return DEBIAN_NGINX
    found = shutil.which("nginx")
    if found is None:
        raise ServerStartError(INSTALL_HINT)
    return Path(found)


@cache
def nginx_version(binary: Path) -> tuple[int, int, int]:
    """`nginx -v` (which answers on stderr: `nginx version: nginx/1.22.1`)."""
    try:
        done = subprocess.run(
            [str(binary), "-v"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError as exc:
        raise ServerStartError(f"cannot run {binary}: {exc.strerror or exc}") from None
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", done.stderr + done.stdout)
    if found is None:
        raise ServerStartError(f"{binary} -v did not say its version: {done.stderr.strip()!r}")
    major, minor, patch = (int(g) for g in found.groups())
    return major, minor, patch


def version_text(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


def free_port(host: str = HOST) -> int:
    """A port that is free now (nginx binds it itself, a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def upstream_address(upstream: Endpoint) -> tuple[str, str]:
    """(scheme, host:port) of what nginx proxies to, as an `upstream { server ...; }` says it."""
    parts = urlsplit(upstream.base_url)
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        raise ScenarioError(f"nginx cannot proxy to {upstream.base_url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return parts.scheme, f"{host}:{port}"


def listen_directives(port: int, tls: bool, version: tuple[int, int, int]) -> str:
    if not tls:
        return f"listen {HOST}:{port};"
    if version >= HTTP2_ON_DIRECTIVE:
        return f"listen {HOST}:{port} ssl;\n        http2 on;"
    return f"listen {HOST}:{port} ssl http2;"


def run_as_user() -> str:
    """nginx started by root hands its workers to `nobody`, which may not reach the layer's
    folder; the workers run as the user who started the benchmark instead. Anyone else: no
    `user` directive (nginx ignores it without privileges)."""
    if os.geteuid() != 0:
        return ""
    import grp
    import pwd

    return f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"


def proxy_headers(websocket: bool) -> str:
    connection = "$connection_upgrade" if websocket else '""'
    upgrade = "\n            proxy_set_header Upgrade $http_upgrade;" if websocket else ""
    return (
        "proxy_http_version 1.1;\n"
        f"            proxy_set_header Connection {connection};{upgrade}\n"
        "            proxy_set_header Host $http_host;\n"
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "            proxy_set_header X-Forwarded-Proto $scheme;"
    )


# nginx-gzip: compression on for the streamed types, as a site that turns on `gzip` for
# text and JSON does (nginx's own defaults otherwise: level 1, 20-byte minimum)
GZIP_TYPES = ("text/event-stream", "application/x-ndjson", "application/json", "text/plain")
GZIP_BLOCK = f"""    gzip on;
    gzip_types {" ".join(GZIP_TYPES)};
    gzip_proxied any;
"""


def render_config(
    work_dir: Path,
    port: int,
    upstream: Endpoint,
    tls: bool,
    version: tuple[int, int, int],
    gzip: bool = False,
) -> str:
    """The whole nginx.conf: every path inside `work_dir`, nothing from /etc/nginx."""
    scheme, address = upstream_address(upstream)
    d = work_dir
    tls_block = ""
    if tls:
        tls_block = (
            f"        ssl_certificate {d / CERT_FILE};\n"
            f"        ssl_certificate_key {d / KEY_FILE};\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n"
            f"        http2_max_concurrent_streams {HTTP2_MAX_STREAMS};\n"
        )
    upstream_tls = "\n            proxy_ssl_verify off;" if scheme == "https" else ""
    timeouts = (
        f"proxy_read_timeout {READ_TIMEOUT_S}s;\n            proxy_send_timeout {READ_TIMEOUT_S}s;"
    )
    upgrades = "".join(  # each transport's WebSocket upgrade, passed on as one
        f"""        location = {path} {{
            proxy_pass {scheme}://tokenwire;
            {proxy_headers(websocket=True)}
            {timeouts}{upstream_tls}
        }}

"""
        for path in TRANSPORTS.upgrade_paths()
    )
    return f"""# generated by tokenwire (harness/measure/paths/nginx.py) for one run; not a template
{run_as_user()}worker_processes {WORKER_PROCESSES};
pid {d / "nginx.pid"};
lock_file {d / "nginx.lock"};
error_log {d / ERROR_LOG} notice;
worker_shutdown_timeout {WORKER_SHUTDOWN_TIMEOUT_S}s;

events {{
    worker_connections {WORKER_CONNECTIONS};
}}

http {{
    default_type application/octet-stream;
    client_body_temp_path {d / "tmp" / "client_body"};
    proxy_temp_path {d / "tmp" / "proxy"};
    fastcgi_temp_path {d / "tmp" / "fastcgi"};
    uwsgi_temp_path {d / "tmp" / "uwsgi"};
    scgi_temp_path {d / "tmp" / "scgi"};
    log_format tokenwire '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                         'rt=$request_time urt=$upstream_response_time';
    access_log {d / ACCESS_LOG} tokenwire;

    client_max_body_size 0;  # the server's own limit answers (413 from tokenwire)
    keepalive_requests {KEEPALIVE_REQUESTS};
    # proxy_buffering is left at nginx's default (on): a response streams through only
    # when it says `X-Accel-Buffering: no`
{GZIP_BLOCK if gzip else ""}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      "";
    }}

    upstream tokenwire {{
        server {address};
        keepalive {UPSTREAM_KEEPALIVE};
        keepalive_requests {KEEPALIVE_REQUESTS};
        keepalive_timeout 60s;
    }}

    server {{
        {listen_directives(port, tls, version)}
        server_name {HOST};
{tls_block}
        location = {READY_PATH} {{
            access_log off;
            return 204;
        }}

{upgrades}        location / {{
            proxy_pass {scheme}://tokenwire;
            {proxy_headers(websocket=False)}
            {timeouts}{upstream_tls}
        }}
    }}
}}
"""


def log_tail(path: Path, offset: int, lines: int = 5) -> str:
    """The last lines `path` gained after `offset`, joined on one line."""
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass
class NginxProcess(ChildProcess):
    """A running nginx master (its workers are its children)."""

    endpoint: Endpoint
    work_dir: Path

    def pids(self) -> list[int]:
        """The master's PID and its workers'."""
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return [self.pid]
        return [self.pid, *(child.pid for child in children)]


def _answers(endpoint: Endpoint) -> bool:
    """Whether nginx answers its own readiness location (the upstream plays no part)."""
    verify: ssl.SSLContext | bool = True
    if endpoint.ca_file is not None:
        verify = ssl.create_default_context(cafile=str(endpoint.ca_file))
    try:
        with httpx.Client(verify=verify, trust_env=False, timeout=1.0) as client:
            return client.get(endpoint.base_url + READY_PATH).status_code == 204
    except httpx.HTTPError:
        return False


def stop_nginx(nginx: NginxProcess, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGQUIT (graceful: the workers finish, or close after WORKER_SHUTDOWN_TIMEOUT_S), then
    SIGKILL after `timeout_s`; any worker that outlived its master is killed by its PID."""
    workers: list[psutil.Process] = []
    with contextlib.suppress(psutil.NoSuchProcess):
        workers = psutil.Process(nginx.pid).children(recursive=True)
    stop_process(nginx.process, timeout_s, signal.SIGQUIT)
    _, alive = psutil.wait_procs(workers, timeout=1.0)
    for worker in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()
    psutil.wait_procs(alive, timeout=timeout_s)


def start_nginx(
    binary: Path,
    upstream: Endpoint,
    work_dir: Path,
    tls: bool,
    timeout_s: float = START_TIMEOUT_S,
    gzip: bool = False,
) -> NginxProcess:
    """nginx in the foreground on a free loopback port, once it answers; ServerStartError
    with its error log's last lines when it does not."""
    version = nginx_version(binary)
    for folder in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work_dir / "tmp" / folder).mkdir(parents=True, exist_ok=True)
    # also the packet emulator's far ends: `nginx-h2+net:...` reaches nginx at one of those
    ca_file = make_certificate(work_dir, also=emulator_addresses())[0] if tls else None
    error_log = work_dir / ERROR_LOG
    reason = ""
    for _ in range(START_ATTEMPTS):
        port = free_port()
        (work_dir / CONFIG).write_text(
            render_config(work_dir, port, upstream, tls, version, gzip), encoding="utf-8"
        )
        scheme = "https" if tls else "http"
        endpoint = Endpoint(f"{scheme}://{HOST}:{port}", http2=tls, ca_file=ca_file)
        offset = log_size(error_log)
        # -e: the error log until the configuration is read (Debian's build says stderr)
        command = [str(binary), "-e", str(error_log), "-p", f"{work_dir}/", "-c", CONFIG]
        with open(work_dir / "nginx.out", "ab") as out:
            process = subprocess.Popen(
                [*command, "-g", "daemon off;"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal goes to the harness only
            )
        nginx = NginxProcess(process, endpoint, work_dir)
        deadline = time.monotonic() + timeout_s
        try:
            while process.poll() is None and time.monotonic() < deadline:
                if _answers(endpoint):
                    return nginx
                time.sleep(0.05)
        except BaseException:
            stop_nginx(nginx)
            raise
        status = process.poll()
        tail = log_tail(error_log, offset) or log_tail(work_dir / "nginx.out", 0)
        stop_nginx(nginx)
        if status is None:
            reason = f"nginx did not answer on {endpoint.base_url} within {timeout_s:g} s"
        else:
            reason = f"nginx exited with status {status} at start-up"
        reason += f": {tail}" if tail else f" (see {error_log})"
        if "Address already in use" not in tail:
            break
    raise ServerStartError(f"{reason} (config: {work_dir / CONFIG})")


@dataclass(frozen=True, slots=True)
class Nginx:
    """nginx as a path layer: plain HTTP/1.1, or TLS and HTTP/2 towards the clients."""

    name: str
    tls: bool
    gzip: bool = False  # nginx-gzip: `gzip on` for the streamed types (GZIP_TYPES)

    def parameters(self) -> dict[str, Any]:
        try:
            version: str | None = version_text(nginx_version(find_nginx()))
        except ServerStartError:
            version = None
        return {
            "nginx_version": version,
            "client_side": "HTTP/2 over TLS (self-signed, 127.0.0.1)" if self.tls else "HTTP/1.1",
            "upstream": f"HTTP/1.1 keep-alive {UPSTREAM_KEEPALIVE}",
            "proxy_buffering": "on (nginx's default; X-Accel-Buffering: no turns it off)",
            "proxy_read_timeout_s": READ_TIMEOUT_S,
            "worker_processes": WORKER_PROCESSES,
            "worker_connections": WORKER_CONNECTIONS,
            "keepalive_requests": KEEPALIVE_REQUESTS,
            **({"http2_max_concurrent_streams": HTTP2_MAX_STREAMS} if self.tls else {}),
            **({"gzip": f"on for {', '.join(GZIP_TYPES)}"} if self.gzip else {}),
        }

    def server_hosts(self) -> tuple[str, ...]:
        """None: nginx passes on the clients' Host, the loopback address it listens on."""
        return ()

    @contextlib.contextmanager
    def open(self, upstream: Endpoint, work_dir: Path) -> Iterator[Endpoint]:
        binary = find_nginx()
        work_dir = work_dir.resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        nginx = start_nginx(binary, upstream, work_dir, self.tls, gzip=self.gzip)
        try:
            yield nginx.endpoint
        finally:
            stop_nginx(nginx)


def _no_argument(kind: str, argument: str) -> None:
    if argument:
        raise ScenarioError(f"path layer {kind} takes no parameters, got {kind}:{argument}")


def nginx_layer(argument: str) -> PathLayer:
    _no_argument("nginx", argument)
    return Nginx("nginx", tls=False)


def nginx_h2_layer(argument: str) -> PathLayer:
    _no_argument("nginx-h2", argument)
    return Nginx("nginx-h2", tls=True)


def nginx_gzip_layer(argument: str) -> PathLayer:
    _no_argument("nginx-gzip", argument)
    return Nginx("nginx-gzip", tls=False, gzip=True)
