"""The HTTP version the clients speak (`http`: `--http 1.1|2|3`, a sweep axis): what each
value asks of the stack and the path, and what the clients are told.

    auto   what the path offers: HTTP/2 through nginx-h2, else HTTP/1.1 (the default)
    best   the newest the stack and the path let clients speak, at each point: so one
           sweep over paths compares nginx-h2's HTTP/2 with the stack's own HTTP/3
    1.1    HTTP/1.1, over TLS through nginx-h2
    2      HTTP/2: over TLS through nginx-h2, else cleartext h2c (prior knowledge) to a
           stack that speaks it, through layers that pass TCP on (net:, relay:)
    3      HTTP/3 over QUIC, to a stack that speaks it (its throwaway certificate trusted),
           on loopback or through net: (which carries UDP); the browser with QUIC forced
           to the server's origin and the certificate trusted by its key's hash

WebSocket streams keep their own HTTP/1.1 upgrade (over TCP) whatever the value; results record each
stream's version as its exchanges had it.
"""

from __future__ import annotations

from typing import Any

from errors import ScenarioError
from harness.measure.paths import parse_path
from stacks import STACKS
from transports import TRANSPORTS

AUTO = "auto"
BEST = "best"
HTTP_VERSIONS = (AUTO, BEST, "1.1", "2", "3")


def http_text(value: Any, where: str = "") -> str:
    """A scenario's `http` as text: "1.1", "2", "3" or "auto" (numbers as TOML writes
    them, 1.1, 2 and 3, too); ScenarioError for anything else."""
    if isinstance(value, bool):
        value = None
    elif isinstance(value, int | float):
        value = f"{value:g}"
    if value not in HTTP_VERSIONS:
        raise ScenarioError(f"{where}http must be one of {', '.join(HTTP_VERSIONS)}; got {value!r}")
    return str(value)


def resolved(http: str, path: str, stack: str) -> str:
    """`best` as the version it is on this path and stack; any other value as it is."""
    if http != BEST:
        return http
    return max(parse_path(path).http_versions(STACKS.get(stack).http_versions), key=float)


def check_http(
    http: str,
    path: str,
    stack: str,
    client: str,
    server_processes: int,
    transports: tuple[str, ...] = (),
    raw_client: bool = False,
) -> None:
    """One point's HTTP version against its stack, path, client and transports: a one-line
    ScenarioError naming what would speak it when nothing in play does."""
    http_text(http)
    http = resolved(http, path, stack)
    if http == AUTO:
        return
    spoken = STACKS.get(stack).http_versions
    through = parse_path(path).http_versions(spoken)
    if http not in through:
        speakers = [s.name for s in STACKS if http in s.http_versions]
        if http not in spoken:
            raise ScenarioError(
                f"http = {http}: stack {stack} speaks HTTP/{'/'.join(spoken)} only; "
                f"{' or '.join(speakers)} speaks HTTP/{http}"
                + (", or put nginx-h2 in the path" if http == "2" else "")
            )
        raise ScenarioError(
            f"http = {http}: path {path} lets clients speak HTTP/{', '.join(through)} only"
            + (" (net: carries QUIC; relay: and nginx do not)" if http == "3" else "")
        )
    if http in ("1.1", "2") and client == "browser":
        raise ScenarioError(
            f"http = {http}: the browser speaks what Chromium and the path negotiate (HTTP/2 "
            "through nginx-h2, else HTTP/1.1): use http = auto, or 3"
        )
    if http in ("2", "3") and raw_client:
        raise ScenarioError(
            f"http = {http}: raw_client measures the floor of plain HTTP/1.1 streams; drop "
            "raw_client, or use http = 1.1"
        )
    upgrades = [t for t in transports if TRANSPORTS.get(t).upgrade_path is not None]
    if http == "3" and client == "browser" and upgrades:
        raise ScenarioError(
            "http = 3 in the browser: its pages are https (QUIC), and a page that is https "
            f"may not open the server's plain ws:// upgrade ({', '.join(upgrades)}); run "
            "them without http = 3"
        )
    if http == "3" and server_processes > 1:
        raise ScenarioError(
            "http = 3: one server process only (its QUIC port and certificate are the run's)"
        )


def check_quic(http: str, path: str, stack: str, transports: tuple[str, ...]) -> None:
    """One point's QUIC transports (`webtransport`) against its path and HTTP version: a
    one-line ScenarioError when they cannot run."""
    quic = [t for t in transports if t in TRANSPORTS and TRANSPORTS.get(t).quic]
    if not quic:
        return
    named = ", ".join(quic)
    if "3" not in parse_path(path).http_versions(("3",)):
        raise ScenarioError(
            f"{named} travels over QUIC (UDP), and path {path} carries TCP only (net: carries "
            "QUIC; relay: and nginx do not): run it on loopback or through net:"
        )
    if resolved(http, path, stack) == "3":
        raise ScenarioError(
            f"{named} and http = 3 would both answer on the server's one UDP port: run them "
            "in separate runs"
        )


def client_versions(http: str, path_http2: bool) -> tuple[bool, bool]:
    """(http2, http3) for the clients' settings: `auto` keeps what the path offers."""
    if http == AUTO:
        return path_http2, False
    return http == "2", http == "3"
