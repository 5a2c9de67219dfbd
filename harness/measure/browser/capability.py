"""Which client kinds exist, and what the browser client can run (no heavy imports: the
scenario module reads this)."""

from __future__ import annotations

from collections.abc import Iterable

from errors import ScenarioError
from transports import TRANSPORTS, TransportRegistry

# a scenario's `client`: who reads the streams. The names of the client kinds' registry
# (`harness.measure.run.client_kinds.CLIENT_KINDS`), listed here for scenario validation and
# the CLI, which must not import the kinds themselves; a test checks that both agree.
CLIENTS = ("python", "browser")
PAGE_FRAMINGS = ("json", "openai")  # the framings page.js knows the terminal message of
# Measured on 2 cores (chat preset, ~80 tokens/s per stream): 96 streams in 16 pages all
# completed, nothing lost, but with ~100-150 ms added delay; the added delay stays under
# 5 ms (p50) up to 18 streams. Chromium tops out near 500-650 delivered tokens/s there.
MAX_BROWSER_CONCURRENCY = 96
# Chromium's HTTP/1.1 connections per host in one browser context: a page runs at most this
# many streams at once unless a scenario asks for more (`streams_per_page`, to show the
# limit: the seventh EventSource waits for a connection on HTTP/1.1, not on HTTP/2)
STREAMS_PER_PAGE = 6


def refuse_for_browser(
    transports: Iterable[str],
    faults: bool,
    registry: TransportRegistry = TRANSPORTS,
    concurrency: int = 1,
) -> None:
    """Raise ScenarioError (one line) when the browser client cannot run this: a transport
    whose registry capability `browser` is False (or that page.js has no code for), a fault
    plan (the page makes no faults), more streams than it was measured to hold."""
    if concurrency > MAX_BROWSER_CONCURRENCY:
        raise ScenarioError(
            f"the browser client holds at most {MAX_BROWSER_CONCURRENCY} streams at once "
            f"(measured on 2 cores; its added delay stays under 5 ms up to about 18), got "
            f"concurrency {concurrency}"
        )
    usable = registry.page_readable()
    for name in transports:
        if name not in registry:
            continue  # unknown names are refused elsewhere, with the list of known ones
        if not registry.get(name).capabilities.browser:
            raise ScenarioError(
                f"transport {name} cannot run in a browser (its capability browser is False); "
                f'with client = "browser" use: {", ".join(usable)}'
            )
        if registry.get(name).page_reader is None:
            raise ScenarioError(
                f"transport {name} names no page reader (harness/measure/browser/page.js); "
                f'with client = "browser" use: {", ".join(usable)}'
            )
    if faults:
        raise ScenarioError(
            "the browser client makes no connection faults: drop [faults] drop_at_token and "
            'leave_at_token, or use client = "python"'
        )
