"""The `browser` client kind (`harness.measure.run.kinds.ClientKind`): `StreamClient`s
(one per page), and what a measured phase records of the browser.

`BrowserClients.open` gives one client per page of one `BrowserSession` (pages =
concurrency / `streams_per_page`, rounded up: `STREAMS_PER_PAGE`, 6, unless the scenario
says; the driver's workers spread evenly over them).
`start` starts the sessions (Chromium, pages, clock checks) before the warm-up, so none of
that falls in a measured window. `report` gives the phase's `BrowserFigures` and Chromium's
CPU as the window's client CPU (the Python side only relays CDP events; its own CPU is kept
in the figures as `python_client_cpu_s`).

`BrowserFigures` holds, besides what ran (Chromium's version, flags, pages):

- `cdp_clock_check`: the known-answer check of each session (`clock.check_cdp_clock`);
  `offset_bound_ms` is where the CDP clock's offset from CLOCK_MONOTONIC can lie.
- `js_clock`: each page's performance.now() calibration (`clock.calibrate_js_clock`).
- `js_after_cdp_ms`: per message, the page's JavaScript got it - its CDP stamp. Chromium
  stamps these events in the renderer as it takes the bytes, so this is the renderer's
  hand-over to JavaScript (near 0 for streams; a poll's body waits for `response.text()`).
- `renderer_after_network_process_ms`, `js_after_network_process_ms`: per HTTP response,
  the renderer's (CDP) and the JavaScript's receipt of the response head after the network
  process's own stamp of it (load timing `receiveHeadersEnd`): the only network-process
  stamp CDP exposes (none for body chunks or WebSocket frames).
- `first_render_after_network_ms`: per stream, the first token on screen after it came off
  the network: the first animation frame after page.js appended its text to the page
  (`renders`), minus its CDP stamp. What a user sees later than a network trace says.
- `python_after_cdp_ms`: how late CDP events reached Python (harness only: it bounds the
  clock check from below and otherwise does not matter).
- `dispatch_ms`: the driver's scheduled stamp -> the page starting the stream (harness
  relay; the stream's timers start at the page, so this is excluded from TTFT and E2E).
- `stamped_by_page_clock` (messages without a CDP event), `cdp_unsettled_streams` (CDP
  still incomplete `SETTLE_S` after the page finished), `page_vs_cdp_request_mismatches`,
  `page_failures`: 0 in a sound run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from clients.interface import ClientSettings, StreamClient, StreamResult, Turn
from errors import ScenarioError
from harness.measure.browser.assemble import EVENT_READER
from harness.measure.browser.capability import STREAMS_PER_PAGE, refuse_for_browser
from harness.measure.browser.clock import stats_ms
from harness.measure.browser.session import (
    CHROMIUM_ARGS,
    BrowserSession,
)
from harness.measure.records import BrowserFigures
from harness.measure.run.kinds import ClientReport, ShardPlan
from harness.measure.run.window import Window
from transports import TRANSPORTS, TransportRegistry
from wire.messages import GenerationRequest

SSE_API = "eventsource"  # the `sse` transport in a page: EventSource (GET); "fetch": POST

WIRE_BYTES_NOTE = (
    "HTTP: received bytes are Chromium's encodedDataLength (head, body, chunked framing); "
    "request heads rebuilt from the headers Chromium sent, request bodies from the page. "
    "WebSocket: handshake heads (the 101 exact) and frames from their payloads plus RFC 6455 "
    "framing; not counted: TCP/TLS below HTTP, which TCP_INFO does not count either"
)
DEFLATE_NOTE = "; WebSocket payloads counted uncompressed: permessage-deflate was on"
CLIENT_CPU = "Chromium's processes (renderers, network, browser; with DevTools on)"


class BrowserStreamClient:
    """One page of a browser session: streams run in it, at most `STREAMS_PER_PAGE` at once."""

    def __init__(self, transport: str, session: BrowserSession, page_index: int) -> None:
        self.transport = transport
        self.session = session
        self.page_index = page_index
        session.users += 1

    async def stream(
        self, request: GenerationRequest, scheduled_ns: int, turn: Turn | None = None
    ) -> StreamResult:
        # a conversation scenario is refused for the browser client when it is validated
        assert turn is None, "the browser client runs no conversations"
        result, _ = await self.session.stream(
            self.page_index, self.transport, request, scheduled_ns
        )
        return result

    async def aclose(self) -> None:
        await self.session.release()


def open_browser_shards(
    transport: str,
    concurrency: int,
    settings: ClientSettings,
    transports: TransportRegistry = TRANSPORTS,
    sse_api: str = SSE_API,
    streams_per_page: int = STREAMS_PER_PAGE,
) -> list[StreamClient]:
    """One browser session for this transport's phase, one client per page of at most
    `streams_per_page` streams."""
    refuse_for_browser([transport], False, transports)
    eventsource = transports.get(transport).page_reader == EVENT_READER
    if eventsource and sse_api == "eventsource" and settings.token is not None:
        raise ScenarioError(
            f"the browser client reads {transport} with EventSource, which cannot send the "
            f"server's bearer token: unset TOKENWIRE_SERVER_TOKEN or leave {transport} out"
        )
    pages = -(-concurrency // streams_per_page)
    session = BrowserSession(
        settings,
        pages,
        sse_api,
        streams_per_page=streams_per_page,
        webtransport=transports.get(transport).quic,
    )
    return [BrowserStreamClient(transport, session, k) for k in range(pages)]


def sessions_of(clients: Iterable[StreamClient]) -> list[BrowserSession]:
    found: list[BrowserSession] = []
    for client in clients:
        if isinstance(client, BrowserStreamClient) and client.session not in found:
            found.append(client.session)
    return found


class BrowserClients:
    """The `browser` client kind: Chromium pages of one session per transport's phase."""

    name = "browser"
    many_processes = False  # one Chromium, same-origin pages: one process, one server

    def __init__(self, sse_api: str = SSE_API) -> None:
        self.sse_api = sse_api

    def open(self, plan: ShardPlan) -> list[StreamClient]:
        if len(plan.settings) > 1:
            raise ScenarioError("the browser client reads from one server: server_processes = 1")
        return open_browser_shards(
            plan.transport,
            plan.concurrency,
            plan.settings[0],
            plan.registry,
            self.sse_api,
            plan.streams_per_page or STREAMS_PER_PAGE,
        )

    async def start(self, clients: Sequence[StreamClient]) -> None:
        """Start every browser session among `clients`."""
        for session in sessions_of(clients):
            await session.start()

    def report(self, clients: Sequence[StreamClient], window: Window) -> ClientReport:
        """Chromium's CPU in the window as the window's client CPU (the Python side's when
        a session could not read it), and the browser's figures."""
        sessions = sessions_of(clients)
        if not sessions:
            return ClientReport(window.client_cpu_s)
        chromium_cpu = [s.cpu.between(window.start_ns, window.end_ns) for s in sessions]
        known = [cpu for cpu in chromium_cpu if cpu is not None]
        client_cpu_s = sum(known) if len(known) == len(chromium_cpu) else window.client_cpu_s
        return ClientReport(client_cpu_s, browser_figures(sessions, window.client_cpu_s))


BROWSER = BrowserClients()


def browser_figures(sessions: Sequence[BrowserSession], python_cpu_s: float) -> BrowserFigures:
    """The figures of a phase's sessions (`python_cpu_s`: the driver's own CPU in its window)."""
    first = sessions[0]
    deflate = any(s.figures.deflate for s in sessions)
    return BrowserFigures(
        chromium=first.version,
        flags=list(CHROMIUM_ARGS),
        pages=sum(s.page_count for s in sessions),
        streams_per_page=first.streams_per_page,
        sse_api={"eventsource": "EventSource (GET)", "fetch": "fetch (POST)"}[first.sse_api],
        stamps="CDP Network event timestamps (CLOCK_MONOTONIC), one per network read",
        cdp_clock_check=[s.clock_check for s in sessions],
        js_clock=[page.clock.to_json() for s in sessions for page in s.pages],
        js_after_cdp_ms=stats_ms([g for s in sessions for g in s.figures.js_gaps_ns]),
        renderer_after_network_process_ms=stats_ms(
            [g for s in sessions for g in s.figures.head_gaps_ns]
        ),
        python_after_cdp_ms=stats_ms([r for s in sessions for r in s.figures.relay_ns]),
        dispatch_ms=stats_ms([d for s in sessions for d in s.figures.dispatch_ns]),
        stamped_by_page_clock=sum(s.figures.js_stamped for s in sessions),
        cdp_unsettled_streams=sum(s.figures.unsettled for s in sessions),
        page_vs_cdp_request_mismatches=sum(s.figures.request_mismatches for s in sessions),
        page_failures=sum(s.figures.page_failures for s in sessions),
        websocket_permessage_deflate=deflate,
        wire_bytes=WIRE_BYTES_NOTE
        + (
            "; WebSocket payloads counted uncompressed: permessage-deflate was on"
            if deflate
            else ""
        ),
        client_cpu=CLIENT_CPU,
        python_client_cpu_s=python_cpu_s,
        js_after_network_process_ms=stats_ms(
            [g for s in sessions for g in s.figures.js_head_gaps_ns]
        ),
        first_render_after_network_ms=stats_ms(
            [g for s in sessions for g in s.figures.render_gaps_ns]
        ),
    )
