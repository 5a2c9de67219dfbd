"""The server's emit timelines, fetched out of band once a phase's streams have ended.

The server keeps, per stream, when it emitted each token and what it emitted
(`servers/timeline.py`); the driver asks for them by stream id (`POST /v1/timelines`),
each from the server its stream went to, and the server drops them as it answers. `direct`
has no server in between: its timeline is what it received itself (`own_timeline`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from clients.httpx_io import tls_context
from clients.interface import ClientSettings, StreamResult, bearer_headers
from servers.settings import SERVER_TOKEN_ENV
from wire.messages import loads

TIMELINE_BATCH = 500  # stream ids per request


@dataclass(frozen=True, slots=True)
class Timeline:
    """The server's side of one stream (or, for `direct`, the client's own view of it)."""

    tokens: int
    emit_ns: list[int | None]
    texts: list[str]
    error: str | None
    usage_tokens: int | None = None
    planned_delays_ns: list[int] | None = None
    done: bool = True
    ended_ns: int | None = None  # when the generation ended (finished, failed or cancelled)
    problem: dict[str, str] | None = None  # why a live upstream failed it: {code, message}


def server_token() -> str | None:
    """The server's bearer token from `TOKENWIRE_SERVER_TOKEN`, which the server under test
    (a subprocess) inherits too; None when unset. The clients send it as well."""
    return os.environ.get(SERVER_TOKEN_ENV, "").strip() or None


async def fetch_timelines(
    base_url: str, ids: Sequence[str], ca_file: str | None = None
) -> dict[str, Timeline]:
    """The server's emit timelines, fetched out of band after the phase, then dropped
    (`ca_file`: the certificate of a path's TLS endpoint, when `base_url` is one)."""
    found: dict[str, Timeline] = {}
    headers = bearer_headers(server_token())
    verify = tls_context(ClientSettings(base_url, ca_file=ca_file))
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, trust_env=False, timeout=60, verify=verify
    ) as http:
        for start in range(0, len(ids), TIMELINE_BATCH):
            batch = list(ids[start : start + TIMELINE_BATCH])
            response = await http.post(
                "/v1/timelines", json={"ids": batch, "texts": True, "drop": True}
            )
            response.raise_for_status()
            for item in loads(response.content)["timelines"]:
                found[item["id"]] = Timeline(
                    tokens=item["tokens"],
                    emit_ns=item["emit_ns"],
                    texts=item["texts"],
                    error=item["error"],
                    usage_tokens=item.get("usage_tokens"),
                    planned_delays_ns=item.get("planned_delays_ns"),
                    done=bool(item.get("done", True)),
                    ended_ns=item.get("ended_ns"),
                    problem=item.get("problem"),
                )
    return found


async def fetch_ended_timelines(
    base_url: str, ids: Sequence[str], patience_s: float
) -> dict[str, Timeline]:
    """Timelines once their generations have ended: streams a client left on purpose run on
    until the server cancels them (a resume grace later), and that end is what the fault
    benchmark measures. Waits at most `patience_s` for the last ones."""
    found = await fetch_timelines(base_url, ids)
    deadline = time.monotonic() + patience_s
    running = [i for i, timeline in found.items() if not timeline.done]
    while running and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        found |= await fetch_timelines(base_url, running)
        running = [i for i in running if not found[i].done]
    return found


def own_timeline(result: StreamResult) -> Timeline:
    """`direct` has no relay: its record of the source is what it received itself."""
    return Timeline(
        tokens=len(result.texts),
        emit_ns=[None] * len(result.texts),
        texts=list(result.texts),
        error=None,
        usage_tokens=result.end_tokens,
    )
