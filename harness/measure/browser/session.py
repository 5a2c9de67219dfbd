"""A headless Chromium, driven by Playwright, whose pages read token streams.

One `BrowserSession` per measured phase: one Chromium, `pages` pages, each in its own
browser context. A context has its own network stack, and Chromium opens at most 6
HTTP/1.1 connections per host in one, so a page runs at most `STREAMS_PER_PAGE` streams at
once (a 7th EventSource or fetch would wait for a free connection, as it would in a real
web app). Each page is a blank page of the tokenwire server's own origin (`/healthz`) with
`page.js` evaluated in it, so every request it makes is same-origin; a CDP session per
page reports its `Network` events (`harness.measure.browser.cdp`).

At start the session calibrates each page's `performance.now()` against CLOCK_MONOTONIC and
runs the CDP clock known-answer check (`harness.measure.browser.clock`) with four short
streams (WebSocket, chunked, EventSource, long polling); it refuses to go on when the check
fails. It samples the CPU time of its Chromium processes whenever the session turns busy or
idle, so a phase's measured window gets Chromium's CPU (`cpu_between`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from clients.interface import ClientSettings, StreamError, StreamResult
from clients.webtransport import PATH as WEBTRANSPORT_PATH
from errors import ErrorKind, UserError
from harness.measure.browser.assemble import (
    Assembly,
    PageRecord,
    assemble,
    complete,
    page_reader,
)
from harness.measure.browser.capability import STREAMS_PER_PAGE
from harness.measure.browser.cdp import HANDLERS, NetworkLog
from harness.measure.browser.clock import (
    BrowserClockInconclusive,
    ClockSample,
    JsClock,
    calibrate_js_clock,
    check_cdp_clock,
)
from harness.measure.browser.quic import (
    certificate_hash,
    page_base,
    quic_args,
    webtransport_args,
    webtransport_url,
)
from harness.measure.run.timelines import Timeline, fetch_timelines
from transports import TRANSPORTS
from wire.messages import GenerationRequest

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, CDPSession, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
# --disable-background-networking and friends: without them Chromium calls home, and this
# machine's closed network refuses its connections
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PAGE_JS = Path(__file__).with_name("page.js")
RUN = "spec => window.tokenwire.run(spec)"
SETTLE_S = 2.0  # how long CDP events may trail the page's own view of a stream
CLOCK_ROUND_TRIPS = 25
CLOCK_CHECK_TOKENS = 12
CLOCK_CHECK_SEED = 2_000_000_000
CLOCK_CHECK_ATTEMPTS = 3
CLOCK_CHECKS = (  # page reader: which CDP event stamps what it reads (EventSource for SSE)
    ("webSocket", "webSocketFrameReceived"),
    ("ndjsonStream", "dataReceived (fetch)"),
    ("eventStream", "dataReceived (EventSource)"),
    ("heldPolls", "loadingFinished"),
)


def clock_checks(upgrades: bool = True) -> list[tuple[str, str]]:
    """(transport, CDP event) for each reader of CLOCK_CHECKS some transport runs with;
    without `upgrades`, none that opens a WebSocket (an https page over HTTP/3 cannot)."""
    checks = []
    for reader, what in CLOCK_CHECKS:
        transport = TRANSPORTS.reading_with(reader)
        if transport is None:
            continue
        if upgrades or TRANSPORTS.get(transport).upgrade_path is None:
            checks.append((transport, what))
    return checks


NETWORK_BUFFERS = {"maxTotalBufferSize": 4_000_000, "maxResourceBufferSize": 1_000_000}


class BrowserUnavailable(UserError, RuntimeError):
    """Playwright or Chromium is missing, or Chromium would not start."""


@dataclass
class BrowserPage:
    context: BrowserContext
    page: Page
    cdp: CDPSession
    log: NetworkLog
    clock: JsClock


@dataclass
class ChromiumCPU:
    """CPU time (user + system) of the session's Chromium processes, sampled on demand."""

    processes: list[psutil.Process] = field(default_factory=list)
    last: dict[int, float] = field(default_factory=dict)
    samples: list[tuple[int, float]] = field(default_factory=list)  # (perf_counter_ns, s)

    def adopt(self, before: set[int]) -> None:
        """Chromium's processes: the descendants of this process that are not in `before`
        (the pids that existed before the launch) and run Chromium."""
        for child in psutil.Process().children(recursive=True):
            if child.pid in before:
                continue
            try:
                if "chrom" in child.name().lower():
                    self.processes.append(child)
            except psutil.Error:
                continue

    def sample(self) -> None:
        for process in self.processes:
            try:
                times = process.cpu_times()
                self.last[process.pid] = times.user + times.system
            except psutil.Error:
                pass  # it ended: its last reading stands
        self.samples.append((time.perf_counter_ns(), sum(self.last.values())))

    def between(self, start_ns: int, end_ns: int) -> float | None:
        before = [cpu for ns, cpu in self.samples if ns <= start_ns]
        after = [cpu for ns, cpu in self.samples if ns >= end_ns]
        return after[0] - before[-1] if before and after else None


@dataclass
class SessionFigures:
    """The phase's browser figures, added up stream by stream."""

    js_gaps_ns: list[int] = field(default_factory=list)
    head_gaps_ns: list[int] = field(default_factory=list)
    js_head_gaps_ns: list[int] = field(default_factory=list)
    render_gaps_ns: list[int] = field(default_factory=list)
    relay_ns: list[int] = field(default_factory=list)  # Python got the CDP event - its stamp
    dispatch_ns: list[int] = field(default_factory=list)
    js_stamped: int = 0
    unsettled: int = 0
    request_mismatches: int = 0
    page_failures: int = 0
    deflate: bool = False
    streams: int = 0

    def add(self, extra: Assembly, dispatch_ns: int, settled: bool) -> None:
        self.streams += 1
        self.js_gaps_ns += extra.js_gaps_ns
        self.head_gaps_ns += extra.head_gaps_ns
        self.js_head_gaps_ns += extra.js_head_gaps_ns
        self.render_gaps_ns += extra.render_gaps_ns
        self.relay_ns += [seen - cdp for cdp, seen, _ in extra.reads]
        self.dispatch_ns.append(dispatch_ns)
        self.js_stamped += extra.js_stamped
        self.unsettled += not settled
        self.request_mismatches += extra.page_requests != extra.cdp_requests
        self.deflate |= extra.deflate


class BrowserSession:
    def __init__(
        self,
        settings: ClientSettings,
        pages: int,
        sse_api: str = "eventsource",
        executable: str = CHROMIUM,
        streams_per_page: int = STREAMS_PER_PAGE,
        webtransport: bool = False,
    ) -> None:
        self.settings = settings
        self.webtransport = webtransport  # its streams run over QUIC: Chromium may speak it
        self.page_count = pages
        self.streams_per_page = streams_per_page
        self.sse_api = sse_api
        self.executable = executable
        self.pages: list[BrowserPage] = []
        self.users = 0
        self.clock_check: dict[str, Any] | None = None
        self.version = ""
        self.figures = SessionFigures()
        self.cpu = ChromiumCPU()
        self.in_flight = 0
        self._lock = asyncio.Lock()
        self._started = False
        self._closed = False
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._page_error: type[Exception] = Exception  # Playwright's, once it is imported
        self._wt_spec: dict[str, Any] | None = None

    # --- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        async with self._lock:
            if self._started:
                return
            if self._closed:
                raise RuntimeError("this browser session is closed")
            try:
                from playwright.async_api import Error, async_playwright
            except ImportError:
                raise BrowserUnavailable(
                    "the browser client needs Playwright: pip install -e '.[browser]'"
                ) from None
            if not os.access(self.executable, os.X_OK):
                raise BrowserUnavailable(
                    f"the browser client needs Chromium at {self.executable}: "
                    "apt-get install chromium"
                )
            self._page_error = Error
            before = {p.pid for p in psutil.Process().children(recursive=True)}
            self._playwright = await async_playwright().start()
            try:
                args = list(CHROMIUM_ARGS)
                if self.settings.http3:
                    args = quic_args(CHROMIUM_ARGS, self.settings.base_url, self.settings.ca_file)
                elif self.webtransport:
                    args = webtransport_args(CHROMIUM_ARGS, self.settings.base_url)
                self._browser = await self._playwright.chromium.launch(
                    executable_path=self.executable, args=args, headless=True
                )
                self.version = self._browser.version
                # the clock check first, in the first page, while the browser is quiet
                self.pages = [await self._open_page()]
                self.clock_check = await self._check_clock_patiently(self.pages[0])
                more = (self._open_page() for _ in range(self.page_count - 1))
                self.pages += await asyncio.gather(*more)
                self.cpu.adopt(before)
            except BaseException as exc:
                await self._shut()
                if isinstance(exc, UserError) or not isinstance(exc, Exception):
                    raise  # the clock check's verdict, a cancellation, an interrupt
                raise BrowserUnavailable(
                    f"Chromium ({self.executable}) failed: {str(exc).splitlines()[0]}"
                ) from exc
            self._started = True
            self.cpu.sample()

    async def _open_page(self) -> BrowserPage:
        assert self._browser is not None
        settings = self.settings
        context = await self._browser.new_context(  # HTTP/3: trusted by its hash instead
            ignore_https_errors=settings.ca_file is not None and not settings.http3
        )
        page = await context.new_page()
        await page.goto(f"{page_base(settings.base_url, settings.http3)}/healthz")
        await page.evaluate(PAGE_JS.read_text(encoding="utf-8"))
        cdp = await context.new_cdp_session(page)
        log = NetworkLog()
        for name in HANDLERS:
            cdp.on(name, functools.partial(log.on, name))
        await cdp.send("Network.enable", {"maxPostDataSize": 65536, **NETWORK_BUFFERS})
        return BrowserPage(context, page, cdp, log, await self._calibrate(page))

    @staticmethod
    async def _calibrate(page: Page) -> JsClock:
        trips = []
        for _ in range(CLOCK_ROUND_TRIPS):
            before = time.perf_counter_ns()
            now_ms = await page.evaluate("performance.now()")
            trips.append((before, float(now_ms), time.perf_counter_ns()))
        origin_ms = await page.evaluate("performance.timeOrigin")
        wall_minus_mono = time.time_ns() - time.perf_counter_ns()
        return calibrate_js_clock(trips, round(origin_ms * 1e6) - wall_minus_mono)

    async def release(self) -> None:
        """One user (a shard's client) is done; the last one closes the browser."""
        self.users -= 1
        if self.users <= 0:
            await self.close()

    async def close(self) -> None:
        async with self._lock:
            if self._started and not self._closed:
                self.cpu.sample()
            self._closed = True
            await self._shut()

    async def _shut(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        if browser is not None:
            with contextlib.suppress(self._page_error):  # a browser that already died
                await browser.close()
        if playwright is not None:
            await playwright.stop()

    # --- streams ---------------------------------------------------------------------

    def spec(
        self, transport: str, request: GenerationRequest, framing: str, timeout_s: float
    ) -> dict[str, Any]:
        settings = self.settings
        return {
            "transport": transport,
            "reader": page_reader(transport),
            "sseApi": self.sse_api,
            "base": page_base(settings.base_url, settings.http3),
            "framing": framing,
            "request": request.to_json(),
            "pollIntervalMs": settings.knob("poll_interval_ms"),
            "longPollWait": f"{settings.knob('long_poll_wait_s'):g}",
            "timeoutMs": timeout_s * 1000,
            "token": settings.token,
            **self.webtransport_spec(),
        }

    def webtransport_spec(self) -> dict[str, Any]:
        """Where a WebTransport session goes, and the certificate's hash to trust (read
        once a session)."""
        if not self.webtransport:
            return {}
        if self._wt_spec is None:
            ca_file = self.settings.ca_file
            self._wt_spec = {
                "wtUrl": webtransport_url(self.settings.base_url, WEBTRANSPORT_PATH),
                "certHash": None if ca_file is None else certificate_hash(ca_file),
            }
        return self._wt_spec

    async def stream(
        self,
        page_index: int,
        transport: str,
        request: GenerationRequest,
        scheduled_ns: int,
        framing: str | None = None,
        timeout_s: float | None = None,
    ) -> tuple[StreamResult, Assembly]:
        """Run one stream in page `page_index`; the result and what it adds to the figures."""
        assert request.stream_id, "the browser client finds a stream's requests by its id"
        if not self._started:
            await self.start()
        page = self.pages[page_index]
        framing = framing or self.settings.framing
        spec = self.spec(transport, request, framing, timeout_s or self.settings.stream_timeout_s)
        if self.in_flight == 0:
            self.cpu.sample()
        self.in_flight += 1
        try:
            try:
                raw = await page.page.evaluate(RUN, spec)
            except self._page_error as exc:  # the page or the browser died
                self.figures.page_failures += 1
                page.log.take(request.stream_id)
                result = StreamResult.start(transport, request, scheduled_ns)
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                result.error = StreamError(ErrorKind.TRANSPORT, f"the browser page failed: {first}")
                return result, Assembly()
            record = PageRecord.from_json(raw)
            settled = await page.log.settle(
                request.stream_id,
                lambda traces: complete(transport, self.sse_api, record, traces),
                SETTLE_S,
            )
            traces = page.log.take(request.stream_id)
            result, extra = assemble(
                transport, self.sse_api, framing, request, scheduled_ns, record, traces, page.clock
            )
            self.figures.add(extra, page.clock.mono_ns(record.start_ms) - scheduled_ns, settled)
            return result, extra
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.cpu.sample()

    # --- the CDP clock check ---------------------------------------------------------

    async def _check_clock_patiently(self, page: BrowserPage) -> dict[str, Any]:
        """The check; an inconclusive one (a busy browser) is tried again a little later."""
        for attempt in range(CLOCK_CHECK_ATTEMPTS):
            try:
                report = await self._check_clock(page)
            except BrowserClockInconclusive:
                if attempt + 1 == CLOCK_CHECK_ATTEMPTS:
                    raise
                await asyncio.sleep(1.0)
            else:
                report["attempts"] = attempt + 1
                return report
        raise AssertionError("unreachable")

    async def _check_clock(self, page: BrowserPage) -> dict[str, Any]:
        tag = f"clock{time.time_ns() % 10**10:x}"
        checks = clock_checks(upgrades=not self.settings.http3)
        ids = [f"{tag}-{transport}" for transport, _ in checks]
        requests = [
            GenerationRequest(
                seed=CLOCK_CHECK_SEED + k, max_tokens=CLOCK_CHECK_TOKENS, stream_id=stream_id
            )
            for k, stream_id in enumerate(ids)
        ]
        saved, self.sse_api = self.sse_api, "eventsource"
        self._started = True  # stream() must not wait for the start it is part of
        try:
            runs = await asyncio.gather(
                *(
                    self.stream(0, transport, request, time.perf_counter_ns(), "json", 60.0)
                    for (transport, _), request in zip(checks, requests, strict=True)
                )
            )
        finally:
            self._started, self.sse_api = False, saved
            self.figures = SessionFigures()  # the check streams are not the phase's
        timelines = await fetch_timelines(self.settings.base_url, ids, self.settings.ca_file)
        samples = clock_samples(checks, runs, timelines)
        report = check_cdp_clock(samples)
        report["js_clock"] = page.clock.to_json()
        return report


def clock_samples(
    checks: Sequence[tuple[str, str]],
    runs: Sequence[tuple[StreamResult, Assembly]],
    timelines: dict[str, Timeline],
) -> list[ClockSample]:
    """Each network event of the check streams that completed tokens, against the server's
    stamp of the last token it completed."""
    samples = []
    for (_, what), (result, extra) in zip(checks, runs, strict=True):
        if result.error is not None:
            raise check_stream_failed(result)
        timeline = timelines.get(result.stream_id)
        if timeline is None:
            raise UserError(f"the CDP clock check found no server timeline for {result.stream_id}")
        for cdp_ns, seen_ns, indices in extra.reads:
            if indices:
                emit = timeline.emit_ns[max(indices)]
                if emit is None:  # the server stamps every token it emits
                    raise UserError(f"the CDP clock check's server timeline lacks a stamp: {what}")
                samples.append(ClockSample(what, emit, cdp_ns, seen_ns))
    return samples


def check_stream_failed(result: StreamResult) -> UserError:
    assert result.error is not None
    return UserError(
        f"the CDP clock check's {result.transport} stream failed: {result.error.message}"
    )
