"""The browser client (harness/measure/browser/): a real Chromium page reads every transport.

The first tests need no browser: how a page's messages map to CDP network events, the
clock checks' arithmetic, what the scenario and the CLI refuse. The tests marked `browser`
run headless Chromium (Debian's /usr/bin/chromium, through Playwright) against a server that
logs every request it gets, so what the server saw of each stream can be counted.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs

import orjson
import pytest
from support import bench, quic_ca, webtransport_args

from clients.interface import ClientSettings
from errors import ErrorKind, ScenarioError
from harness.analyse.metrics import summarize
from harness.measure.browser.assemble import (
    WEBTRANSPORT_READER,
    PageMessage,
    PageRecord,
    assemble,
)
from harness.measure.browser.capability import refuse_for_browser
from harness.measure.browser.cdp import Arrival, NetworkLog, RequestTrace
from harness.measure.browser.client import open_browser_shards
from harness.measure.browser.clock import (
    BrowserClockMismatch,
    ClockSample,
    JsClock,
    calibrate_js_clock,
    check_cdp_clock,
)
from harness.measure.browser.request_log import (
    eventsource_requests,
    logged_requests,
    logged_server,
)
from harness.measure.browser.session import CHROMIUM, CHROMIUM_ARGS, PAGE_JS, BrowserSession
from harness.measure.driver import run_benchmark
from harness.measure.records import PhaseRecord
from harness.measure.scenario import Scenario, scenario_from_dict, validated
from harness.measure.server_process import ServerProcess
from servers.sources.spec import SourceSpec
from transports import PUSH, TRANSPORTS, Capabilities, Kind, Transport
from wire.messages import GenerationRequest
from wire.webtransport import encode_message

MS = 1_000_000
NO_OFFSET = JsClock(offset_ns=0, bound_ns=0, method="test", origin_minus_bounds_ns=0)


# --- messages to network events (no browser) --------------------------------------------


REQUEST = GenerationRequest(stream_id="s")
END = '{"done":true,"n":%d,"id":"s"}'


def trace_with_reads(*lengths: int, start_ns: int = 1000 * MS) -> RequestTrace:
    trace = RequestTrace("r1", url="http://h/v1/chunked", method="POST", status=200)
    for k, length in enumerate(lengths):
        trace.reads.append(Arrival(start_ns + k * MS, start_ns + k * MS + 5, length))
    trace.finished = Arrival(start_ns + len(lengths) * MS, 0)
    trace.total_received = 500
    return trace


def line(i: int, text: str) -> str:
    return f'{{"i":{i},"t":"{text}"}}'


def page(payloads: list[str], positions: list[int], js_ms: float = 5.0) -> PageRecord:
    """A page's record of one push stream that ended normally."""
    messages = [PageMessage(p, js_ms, 0, pos) for p, pos in zip(payloads, positions, strict=True)]
    return PageRecord(0.0, 9.0, 1, True, None, messages)


def run(transport: str, record: PageRecord, traces: list[RequestTrace]) -> tuple:
    return assemble(transport, "eventsource", "json", REQUEST, 0, record, traces, NO_OFFSET)


def test_fetch_body_messages_take_the_stamp_of_the_read_that_completed_them() -> None:
    payloads = [line(0, "a"), line(1, "b"), line(2, "c"), END % 3]
    ends = [sum(len(p) + 1 for p in payloads[: k + 1]) for k in range(len(payloads))]
    # read 0 ends inside message 1; read 1 completes messages 1 and 2; read 2 the end
    trace = trace_with_reads(ends[0] + 3, ends[2] - ends[0] - 3, ends[3] - ends[2])
    result, extra = run("chunked", page(payloads, ends), [trace])
    assert result.error is None
    assert result.indices == [0, 1, 2]
    assert result.recv_ns == [1000 * MS, 1001 * MS, 1001 * MS]
    assert result.chunk_sizes == [1, 2]
    assert result.end_ns == 1002 * MS and result.end_tokens == 3
    assert result.requests == 1 and result.bytes_received == 500
    assert extra.js_stamped == 0
    assert [indices for _, _, indices in extra.reads] == [[0], [1, 2], []]


def test_the_first_token_on_screen_is_measured_from_its_network_arrival() -> None:
    """page.js stamps each message's first animation frame after its DOM update: token 0's
    frame minus token 0's CDP stamp, one per stream (a start message carries no token)."""
    payloads = [line(0, "a"), line(1, "b"), END % 2]
    ends = [sum(len(p) + 1 for p in payloads[: k + 1]) for k in range(len(payloads))]
    trace = trace_with_reads(ends[0], ends[1] - ends[0], ends[2] - ends[1])
    record = page(payloads, ends)
    shown = replace(record, renders={0: 1016.0, 1: 1016.0})
    result, extra = run("chunked", shown, [trace])
    assert result.recv_ns[0] == 1000 * MS
    assert extra.render_gaps_ns == [NO_OFFSET.mono_ns(1016.0) - 1000 * MS]
    _, unseen = run("chunked", record, [trace])  # no frame stamp (a page that never drew)
    assert unseen.render_gaps_ns == []


def test_eventsource_events_are_stamped_by_the_read_they_came_in() -> None:
    trace = RequestTrace("r1", url="http://h/v1/sse?seed=1&stream=s", method="GET", status=200)
    trace.reads = [Arrival(10 * MS, 0, 40), Arrival(20 * MS, 0, 80)]
    payloads = [line(0, "a"), line(1, "b"), END % 2]
    parsed_at = (10 * MS + 50, 20 * MS + 40, 20 * MS + 90)
    trace.events = [Arrival(n, 0, data=p) for n, p in zip(parsed_at, payloads, strict=True)]
    trace.finished = Arrival(21 * MS, 0)
    result, _ = run("sse", page(payloads, [0, 1, 2]), [trace])
    assert result.recv_ns == [10 * MS, 20 * MS]
    assert result.chunk_sizes == [1, 1]
    assert result.end_ns == 20 * MS


def test_a_message_cdp_never_reported_is_stamped_by_the_page_clock_and_counted() -> None:
    trace = RequestTrace("r1", websocket=True, url="ws://h/v1/ws", method="GET")
    trace.frames_in = [Arrival(7 * MS, 0, 10, line(0, "a"))]
    trace.finished = Arrival(9 * MS, 0)
    payloads = [line(0, "a"), line(1, "b"), END % 2]
    result, extra = run("websocket", page(payloads, [0, 1, 2], js_ms=8.0), [trace])
    assert result.recv_ns == [7 * MS, 8 * MS]
    assert extra.js_stamped == 2 and extra.js_gaps_ns == [1 * MS]


def test_the_page_error_and_a_missing_end_are_stream_errors() -> None:
    trace = trace_with_reads(20)
    message = PageMessage(line(0, "a"), 1.0, 0, 18)
    raw = {"startMs": 0, "endMs": 1, "requests": 1, "done": False, "messages": []}
    error = PageRecord.from_json({**raw, "error": {"kind": "timeout", "message": "t"}}).error
    for page_error, kind in ((error, ErrorKind.TIMEOUT), (None, ErrorKind.INCOMPLETE)):
        result, _ = run("chunked", PageRecord(0.0, 1.0, 1, False, page_error, [message]), [trace])
        assert result.indices == [0]
        assert result.error is not None and result.error.kind == kind


def test_polls_are_checked_by_the_python_clients_own_logic() -> None:
    create = RequestTrace("c", url="http://h/v1/streams", method="POST", status=201)
    create.finished = Arrival(1 * MS, 0)
    polls = []
    for k in range(2):
        poll = RequestTrace(f"p{k}", url="http://h/v1/streams/s?offset=0", method="GET")
        poll.finished = Arrival((5 + k) * MS, 0)
        polls.append(poll)
    bodies = [
        '{"tokens":[{"i":0,"t":"a"}],"next":1,"done":false}',
        '{"tokens":[{"i":5,"t":"b"}],"next":6,"done":true}',  # not the offset asked for
    ]
    messages = [PageMessage(b, 1.0, k + 1, 0) for k, b in enumerate(bodies)]
    record = PageRecord(0.0, 1.0, 3, True, None, messages)
    result, _ = run("long_poll", record, [create, *polls])
    assert result.indices == [0] and result.recv_ns == [5 * MS]
    assert result.error is not None and result.error.kind == ErrorKind.PROTOCOL
    assert result.requests == 3


def test_network_log_groups_requests_by_stream_and_rebuilds_request_heads() -> None:
    log = NetworkLog(clock=lambda: 0)
    sse = {"url": "http://h/v1/sse?seed=3&stream=abc", "method": "GET"}
    log.on("Network.requestWillBeSentExtraInfo", {"requestId": "1", "headers": {"Host": "h"}})
    log.on("Network.requestWillBeSent", {"requestId": "1", "request": sse})
    own = {"url": "http://h/healthz", "method": "GET"}
    log.on("Network.requestWillBeSent", {"requestId": "2", "request": own})
    log.on("Network.loadingFinished", {"requestId": "2", "timestamp": 1.0, "encodedDataLength": 9})
    log.on("Network.webSocketCreated", {"requestId": "3", "url": "ws://h/v1/ws"})
    first = {"payloadData": '{"seed":1,"stream_id":"w"}'}
    log.on("Network.webSocketFrameSent", {"requestId": "3", "timestamp": 2.0, "response": first})
    (trace,) = log.take("abc")
    assert trace.request_head == len("GET /v1/sse?seed=3&stream=abc HTTP/1.1\r\nHost: h\r\n\r\n")
    assert "2" not in log.by_id  # the page's own request is forgotten once it ended
    (ws,) = log.take("w")
    assert ws.websocket and ws.frames_out[0].ns == 2_000_000_000


# --- clocks (no browser) ---------------------------------------------------------------


def samples(cdp_offset_ns: int) -> list[ClockSample]:
    """A CDP clock `cdp_offset_ns` away from CLOCK_MONOTONIC: events 1 ms after the server
    sent, seen by Python 3 ms after that."""
    return [
        ClockSample("test", emit, emit + MS + cdp_offset_ns, emit + 4 * MS)
        for emit in range(0, 50 * MS, 5 * MS)
    ]


def test_the_cdp_clock_check_passes_the_servers_clock_and_bounds_its_error() -> None:
    report = check_cdp_clock(samples(0))
    assert report["ok"] and report["offset_bound_ms"] == [-3.0, 1.0]
    assert report["cdp_minus_emit_ms"]["p50"] == 1.0


@pytest.mark.parametrize(
    "offset_ns",
    [-2 * MS, 5 * MS, int(1.7e18)],  # before the send; after Python saw it; the wall clock
)
def test_the_cdp_clock_check_refuses_another_clock(offset_ns: int) -> None:
    with pytest.raises(BrowserClockMismatch, match="not on the server's clock"):
        check_cdp_clock(samples(offset_ns))


def test_the_page_clock_takes_time_origin_within_the_round_trip_bounds() -> None:
    true_offset = 123 * MS
    trips = [(b, (b + 100_000 - true_offset) / 1e6, b + 400_000) for b in range(0, 10**9, 10**8)]
    clock = calibrate_js_clock(trips, true_offset + 20_000)
    assert clock.method == "timeOrigin" and clock.offset_ns == true_offset + 20_000
    assert clock.mono_ns(1.0) == true_offset + 20_000 + MS
    far = calibrate_js_clock(trips, true_offset + 5 * MS)  # a stepped wall clock
    assert far.method == "round trips" and abs(far.offset_ns - true_offset) < 400_000


# --- what the scenario and the CLI refuse (no browser) ------------------------------------


def test_client_is_a_scenario_field_with_two_values() -> None:
    assert validated(scenario_from_dict({"client": "browser"})).client == "browser"
    assert Scenario().client == "python"
    with pytest.raises(ScenarioError, match="unknown client 'chrome'; allowed: python, browser"):
        validated(scenario_from_dict({"client": "chrome"}))
    with pytest.raises(ScenarioError, match="makes no connection faults"):
        validated(scenario_from_dict({"client": "browser", "faults": {"drop_at_token": 3}}))
    with pytest.raises(ScenarioError, match="holds at most 96 streams at once"):
        validated(scenario_from_dict({"client": "browser", "concurrency": 200}))


def no_browser_transport() -> Transport:
    sse = TRANSPORTS.get("sse")
    caps = Capabilities(resume=False, cancel_on_disconnect=True, browser=False)
    return Transport("pigeon", Kind.PUSH, "Pigeon", "", sse.router, sse.exchange, "#000", caps)


def test_a_transport_a_browser_cannot_run_is_refused_in_one_line() -> None:
    registry = TRANSPORTS.with_transport(no_browser_transport())
    with pytest.raises(ScenarioError) as refused:
        refuse_for_browser(["sse", "pigeon"], False, registry)
    assert "pigeon cannot run in a browser (its capability browser is False)" in str(refused.value)
    assert "\n" not in str(refused.value)
    scenario = Scenario(client="browser", transports=("sse",))
    with pytest.raises(ScenarioError, match="capability browser is False"):
        open_browser_shards("pigeon", scenario.concurrency, ClientSettings("http://h"), registry)
    sse = TRANSPORTS.get("sse")
    unpaged = Transport("carrier", Kind.PUSH, "Carrier", "", sse.router, sse.exchange, "#0", PUSH)
    with pytest.raises(ScenarioError, match="names no page reader"):
        refuse_for_browser(["carrier"], False, TRANSPORTS.with_transport(unpaged))


def test_eventsource_cannot_carry_a_bearer_token() -> None:
    scenario = Scenario(client="browser", transports=("sse",))
    with pytest.raises(ScenarioError, match="EventSource, which cannot send"):
        open_browser_shards("sse", scenario.concurrency, ClientSettings("http://h", token="t0k"))


def test_the_cli_takes_client_and_refuses_a_bad_one(tmp_path: Path) -> None:
    done = bench("run", "--client", "chrome", "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "--client: invalid choice: 'chrome'" in done.stderr
    faulty = tmp_path / "faulty.toml"
    faulty.write_text('transports = ["sse"]\n[faults]\nleave_at_token = 5\n')
    done = bench("run", "--scenario", str(faulty), "--client", "browser", "--out", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no connection faults" in done.stderr


# --- in Chromium ---------------------------------------------------------------------------

FAST = SourceSpec(preset="chat", ttft_ms=20, tokens_per_s=100, tokens_per_response=30)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"the browser tests need Chromium at {CHROMIUM}: apt-get install chromium "
            "(.ci/run does this)",
            pytrace=False,
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("the browser tests need Playwright: pip install -e '.[test]'", pytrace=False)
    log = tmp_path_factory.mktemp("browser") / "server.log"
    with logged_server(FAST, log, webtransport_args()) as server:
        yield server


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_cdp_timestamps_are_the_servers_clock(logged: ServerProcess) -> None:
    """The known answer: the server stamps each token as it emits it; the CDP stamp of the
    network event that delivered it must come a few ms later, and before Python saw the
    event. A clock other than CLOCK_MONOTONIC would miss by far more than that."""

    async def check() -> tuple[dict[str, object], int]:
        session = BrowserSession(ClientSettings(logged.base_url), pages=1)
        before = time.perf_counter_ns()
        try:
            await session.start()
            assert session.clock_check is not None
            return session.clock_check, before
        finally:
            await session.close()

    report, _ = asyncio.run(check())
    assert report["ok"] is True
    kinds = report["kinds"]
    assert isinstance(kinds, list)
    assert set(kinds) == {
        "webSocketFrameReceived",
        "dataReceived (fetch)",
        "dataReceived (EventSource)",
        "loadingFinished",
    }
    lag, lead = report["cdp_minus_emit_ms"], report["python_minus_cdp_ms"]
    assert isinstance(lag, dict) and isinstance(lead, dict)
    # every stamp after the server's send and before Python got the event; the closest
    # within a few ms of the send (measured here: 0.2-0.9 ms; the median grows with load)
    assert lag["min"] >= 0 and lead["min"] >= 0
    assert lag["min"] < 5 and lag["p50"] < 50, lag
    # the offset's bound: above, the closest event to its send (tight); below, the fastest
    # relay of an event to Python (loose on a busy machine: Chromium -> Playwright -> Python)
    bound = report["offset_bound_ms"]
    assert isinstance(bound, list | tuple)
    low, high = bound
    assert low <= 0 <= high < 5
    assert report["js_clock"]["method"] == "timeOrigin"  # type: ignore[index]


@pytest.fixture(scope="module")
def browser_run(logged: ServerProcess) -> dict[str, PhaseRecord]:
    scenario = Scenario(
        name="browser-test",
        transports=TRANSPORTS.names(),
        client="browser",
        requests=8,
        concurrency=4,
        warmup=1,
        source=FAST,
    )
    scenario = validated(scenario.with_knob("poll_interval_ms", 50))
    phases = asyncio.run(run_benchmark(scenario, logged, ca_file=Path(quic_ca())))
    return {phase.transport: phase for phase in phases}


@pytest.mark.browser
@pytest.mark.timeout(300)
@pytest.mark.parametrize("transport", [t.name for t in TRANSPORTS if t.capabilities.browser])
def test_every_transport_in_chromium_loses_and_duplicates_nothing(
    browser_run: dict[str, PhaseRecord], transport: str
) -> None:
    phase = browser_run[transport]
    summary = summarize(phase)
    assert summary.streams == 8 and summary.errors == 0, [
        r.error_message for r in phase.requests if r.error_message
    ]
    assert summary.tokens_received == summary.tokens_emitted > 0
    assert summary.tokens_lost == 0 and summary.tokens_duplicated == 0
    assert summary.text_mismatches == 0
    # CDP has no event for a WebTransport read, nor its heads: the page stamps and counts
    cdp_seen = TRANSPORTS.get(transport).page_reader != WEBTRANSPORT_READER
    assert summary.wire_bytes_per_token
    assert bool(summary.header_bytes_per_token) == cdp_seen
    browser = phase.browser
    assert browser is not None and phase.setup is not None
    assert all(check is not None and check["ok"] for check in browser.cdp_clock_check)
    assert browser.stamped_by_page_clock == 0  # every token has its CDP stamp, or needs none
    assert (browser.js_after_cdp_ms["n"] > 0) == cdp_seen
    rendered = browser.first_render_after_network_ms
    # one per stream, the warm-up's included (the session's figures count every stream);
    # on screen after it came off the network
    assert rendered["n"] == summary.streams + 1 and rendered["min"] >= 0
    if transport not in ("websocket", "webtransport"):  # CDP stamps HTTP heads only
        assert browser.js_after_network_process_ms["n"] > 0
    assert phase.client_cpu_s and phase.client_cpu_s > 0  # Chromium's CPU
    if TRANSPORTS.get(transport).kind is Kind.PUSH:
        assert summary.added_delay_ms.p50 is not None and summary.added_delay_ms.p50 < 5.0
        assert all(r.requests == 1 for r in phase.requests)


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_eventsource_makes_exactly_one_request_per_stream(
    logged: ServerProcess, browser_run: dict[str, PhaseRecord]
) -> None:
    """Counted where it matters, on the server: EventSource reconnects by itself unless the
    page closes it at the terminal event."""
    seen = eventsource_requests(logged.log_path)
    streams = [r.stream_id for r in browser_run["sse"].requests]
    assert {s: seen[s] for s in streams} == dict.fromkeys(streams, 1)
    assert [r.requests for r in browser_run["sse"].requests] == [1] * len(streams)


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_the_requests_cdp_counted_are_the_requests_the_server_got(
    logged: ServerProcess, browser_run: dict[str, PhaseRecord]
) -> None:
    polls: Counter[str] = Counter()
    for line in logged_requests(logged.log_path):
        path = str(line["path"])
        if line["method"] == "GET" and path.startswith("/v1/streams/"):
            polls[path.removeprefix("/v1/streams/")] += 1
            assert "offset" in parse_qs(str(line["query"]))
    for transport in ("short_poll", "long_poll"):
        for record in browser_run[transport].requests:
            assert record.requests == polls[record.stream_id] + 1  # + the create request


async def in_session(
    server: ServerProcess, runs: list[tuple[str, str]], sse_api: str, **settings: object
) -> list:
    """Streams run one by one in one page: (transport, framing) each, all with seed 7."""
    session = BrowserSession(ClientSettings(server.base_url, **settings), 1, sse_api)  # type: ignore[arg-type]
    results = []
    try:
        for k, (transport, framing) in enumerate(runs):
            request = GenerationRequest(seed=7, stream_id=f"t{time.time_ns()}-{k}")
            result, _ = await session.stream(0, transport, request, time.perf_counter_ns(), framing)
            results.append(result)
    finally:
        await session.close()
    return results


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_sse_over_fetch_post_and_the_openai_framing(logged: ServerProcess) -> None:
    runs = [("sse", "json"), ("sse", "openai"), ("chunked", "openai"), ("websocket", "openai")]
    results = asyncio.run(in_session(logged, runs, "fetch"))
    for (transport, framing), result in zip(runs, results, strict=True):
        assert result.error is None, (transport, framing, result.error)
        assert result.end_ns is not None and result.requests == 1
        assert result.indices == list(range(len(results[0].indices)))
        assert result.texts == results[0].texts  # the same seed: the same tokens
    posted = [
        line
        for line in logged_requests(logged.log_path)
        if line["path"] == "/v1/sse" and line["method"] == "POST"
    ]
    assert len(posted) >= 2  # SSE over fetch: POST /v1/sse, not EventSource's GET


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_a_stream_past_its_timeout_is_a_timeout_error(logged: ServerProcess) -> None:
    runs = [(t, "json") for t in ("sse", "chunked", "websocket", "long_poll")]
    results = asyncio.run(in_session(logged, runs, "eventsource", stream_timeout_s=0.15))
    for (transport, _), result in zip(runs, results, strict=True):
        assert result.error is not None and result.error.kind == ErrorKind.TIMEOUT, transport
        assert result.end_ns is None


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_the_seventh_eventsource_waits_for_a_connection_on_http1_only(
    logged: ServerProcess, tmp_path: Path
) -> None:
    """scenarios/browser-seventh.toml: seven EventSources in one page. Chromium opens six
    HTTP/1.1 connections per host, so on loopback the last stream's first token comes after
    the first stream has ended; over nginx-h2 all seven share one connection."""
    out = tmp_path / "seventh"
    scenario = Path(__file__).parents[3] / "scenarios" / "browser-seventh.toml"
    args = ["run", "--scenario", str(scenario), "--tokens-per-response", "30", "--out", str(out)]
    done = bench(*args, "--quiet", timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    results = orjson.loads((out / "results.json").read_bytes())
    waits = {}
    for point in results["points"]:
        phase = point["transports"]["sse"]["phase"]
        records = phase["requests"]
        assert [r["error_kind"] for r in records] == [None] * 7
        ttft = max(r["recv_ns"][0] - r["started_ns"] for r in records)
        first_end = min(r["end_ns"] - r["started_ns"] for r in records)
        waits[point["value"]] = (ttft > first_end, {r["http_version"] for r in records})
        assert phase["browser"]["streams_per_page"] == 7 and phase["browser"]["pages"] == 1
    assert waits["loopback"] == (True, {"HTTP/1.1"}), waits
    assert waits["nginx-h2"][0] is False, waits


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_the_pages_webtransport_codec_is_the_wire_codec() -> None:
    """page.js writes each message as `wire/webtransport.py` does, and reads the wire
    codec's bytes back whole, fed whole, byte by byte and cut at every point."""
    texts = ["", "hi", "日本", "a\nb", "x" * 63, "y" * 64, "z" * 16_383, "w" * 16_384, "😀" * 40]
    data = b"".join(encode_message(t) for t in texts)
    starts = [sum(len(encode_message(t)) for t in texts[:k]) for k in range(len(texts))]
    cuts = sorted({c for s in starts for c in range(max(1, s - 2), s + 7) if c < len(data)})

    async def check() -> tuple[list[list[int]], list[list[str]]]:
        from playwright.async_api import async_playwright

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
            )
            try:
                page = await browser.new_page()
                await page.evaluate(PAGE_JS.read_text(encoding="utf-8"))
                encoded = await page.evaluate(
                    "ts => ts.map(t => Array.from(window.tokenwire.codecs.lengthPrefixed(t)))",
                    texts,
                )
                decoded = await page.evaluate(
                    """([bytes, cuts]) => {
                      const all = Uint8Array.from(bytes);
                      const feeds = [[all], Array.from(all, (b) => Uint8Array.of(b))];
                      for (const cut of cuts) feeds.push([all.subarray(0, cut), all.subarray(cut)]);
                      return feeds.map((pieces) => {
                        const read = window.tokenwire.codecs.prefixedMessages();
                        return pieces.flatMap((piece) => read(piece));
                      });
                    }""",
                    [list(data), cuts],
                )
            finally:
                await browser.close()
        return encoded, decoded

    encoded, decoded = asyncio.run(check())
    assert [bytes(e) for e in encoded] == [encode_message(t) for t in texts]
    assert all(messages == texts for messages in decoded)
