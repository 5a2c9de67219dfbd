"""Real EventSources recover from a drop on their own: Chromium's (marked `browser`) and the
Node `eventsource` package's (`tests/node/eventsource.mjs`, pinned in tests/node/package.json).

A TCP proxy on loopback (`CuttingProxy`) stands between the client and a real server and
cuts the first `GET /v1/sse` it carries: right after the response head (json: the client
saw no event, so no id) or right after the first event (openai: the role chunk, `id: -1`).
Every later request passes untouched. The EventSource then reconnects by itself (after its
default delay: no `retry:` is sent) without `Last-Event-ID` (json), which rejoins the stream
from its start, or with `Last-Event-ID: -1` (openai), which resumes at token 0. Either way
the text must arrive exactly once and the generation must end normally, not cancelled for
want of a reader.

The Node test runs in the default suite and needs `tests/node/node_modules` (`npm ci
--prefix tests/node`, as `.ci/run` does): without it, it fails and says so."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from support import ROOT, serve

from harness.measure.browser.session import CHROMIUM, CHROMIUM_ARGS
from harness.measure.server_process import ServerProcess
from servers.sources.spec import SourceSpec

NODE_DIR = ROOT / "tests" / "node"
# about 4 s of tokens: EventSource's default reconnect delay (3 s in both clients) lands in
# the middle of the generation, and inside the server's default resume grace (5 s)
SPEC = SourceSpec(preset="chat", ttft_ms=20, tokens_per_s=10, tokens_per_response=40)
RESUME_GRACE_S = 5.0  # the server's default (`--resume-grace-s`)
HEAD_END = b"\r\n\r\n"
EVENT_END = b"\n\n"
CHUNK_END = b"\r\n"


@dataclass
class CuttingProxy:
    """Forwards 127.0.0.1:port to the server, and cuts the first `GET /v1/sse`: closes both
    sides once the response head (`cut="head"`) or the head and the first SSE event
    (`cut="first_event"`) has reached the client. Request heads are read to find that
    request on keep-alive connections (the clients here send GETs only, without bodies)."""

    upstream: str  # host:port
    cut: str
    connections: int = 0
    sse_requests: list[tuple[float, str]] = field(default_factory=list)  # (when, head)
    cut_at: float | None = None
    forwarded_before_cut: bytes = b""
    _server: asyncio.Server | None = None
    _open: dict[asyncio.Task[None], tuple[asyncio.StreamWriter, ...]] = field(
        default_factory=dict
    )  # each connection's handler: its writers

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        handlers = list(self._open.items())  # connections still open (a browser's keep-alive)
        for _, writers in handlers:
            for writer in writers:
                writer.close()
        await asyncio.gather(*(handler for handler, _ in handlers), return_exceptions=True)
        await self._server.wait_closed()

    @property
    def origin(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    @property
    def reconnect_delay_s(self) -> float:
        """From the cut to the request after it."""
        assert self.cut_at is not None and len(self.sse_requests) >= 2
        return self.sse_requests[1][0] - self.cut_at

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        handler = asyncio.current_task()
        assert handler is not None
        host, port = self.upstream.rsplit(":", 1)
        server_r, server_w = await asyncio.open_connection(host, int(port))
        self._open[handler] = (client_w, server_w)
        cutting = asyncio.Event()  # this connection carries the request to cut

        async def requests() -> None:
            pending = b""
            while data := await client_r.read(65536):
                pending += data
                while (end := pending.find(HEAD_END)) >= 0:
                    head, pending = pending[: end + len(HEAD_END)], pending[end + len(HEAD_END) :]
                    if head.startswith(b"GET /v1/sse"):
                        self.sse_requests.append((time.monotonic(), head.decode("latin-1")))
                        if len(self.sse_requests) == 1:
                            cutting.set()  # before the request goes: its response is next
                    server_w.write(head)
                    await server_w.drain()
            server_w.write_eof()

        async def responses() -> None:
            pending = b""
            while data := await server_r.read(65536):
                if not cutting.is_set():
                    client_w.write(data)
                    await client_w.drain()
                    continue
                pending += data
                end = self._cut_point(pending)
                if end is None:
                    continue
                self.forwarded_before_cut = pending[:end]
                client_w.write(pending[:end])
                await client_w.drain()
                self.cut_at = time.monotonic()
                return
            client_w.write_eof()

        tasks = [asyncio.create_task(requests()), asyncio.create_task(responses())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if self.cut_at is not None and cutting.is_set():
                return  # the cut: both sides close below
            await asyncio.wait(tasks)
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_w, server_w):
                writer.close()
            self._open.pop(handler, None)

    def _cut_point(self, response: bytes) -> int | None:
        """Where to cut the response, once enough of it came (None: read on)."""
        head = response.find(HEAD_END)
        if head < 0:
            return None
        body = head + len(HEAD_END)
        if self.cut == "head":
            return body
        event = response.find(EVENT_END, body)
        if event < 0:
            return None
        end = event + len(EVENT_END)
        if response[end : end + len(CHUNK_END)] == CHUNK_END:
            end += len(CHUNK_END)  # the end of the HTTP chunk that carried the event
        return end


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Streams of about 4 s, the default resume grace (5 s)."""
    yield from serve(tmp_path_factory, "eventsource-reconnect", SPEC)


@dataclass(frozen=True)
class Case:
    framing: str
    cut: str  # where the proxy cuts the first connection

    @property
    def label(self) -> str:
        return self.framing


CASES = [Case("json", "head"), Case("openai", "first_event")]


async def timeline(server: ServerProcess, stream_id: str) -> dict:
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False, timeout=30) as http:
        for _ in range(100):  # the client saw the end: the generation has ended
            body = (await http.get(f"/v1/streams/{stream_id}/timeline?texts=true")).json()
            if body["done"]:
                return body
            await asyncio.sleep(0.05)
    raise AssertionError(f"stream {stream_id} did not end")


@contextlib.asynccontextmanager
async def proxied(server: ServerProcess, case: Case) -> AsyncIterator[CuttingProxy]:
    upstream = server.base_url.removeprefix("http://").rstrip("/")
    async with CuttingProxy(upstream, case.cut) as proxy:
        yield proxy


def stream_url(proxy: CuttingProxy, case: Case, client: str) -> tuple[str, str]:
    stream_id = f"es-{client}-{case.framing}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    return stream_id, f"{proxy.origin}/v1/sse?seed=7&stream={stream_id}&framing={case.framing}"


def check(
    case: Case, proxy: CuttingProxy, got: dict, server_side: dict, client: str
) -> dict[str, object]:
    """What every client must show; returns the measured facts."""
    # the drop happened where it should: no event (json), only the role chunk (openai)
    cut_body = proxy.forwarded_before_cut.split(HEAD_END, 1)[1]
    if case.cut == "head":
        assert cut_body == b""
    else:
        assert cut_body.count(EVENT_END) == 1 and b"id: -1\n" in cut_body, cut_body
    # the client reconnected by itself, once, and named the stream again with the resume
    # point it had: none, or the role chunk's -1. A client may also reconnect without it
    # after the role chunk: the cut's bytes and the connection's end arrive together, and
    # Chromium sometimes ends the connection before it dispatches the event (seen under
    # load). The server then sends the stream from its start, role chunk included; the
    # role chunk is still seen once (below).
    assert len(proxy.sse_requests) == 2, proxy.sse_requests
    reconnect_head = proxy.sse_requests[1][1].lower()
    resumed_after_role = "last-event-id: -1\r\n" in reconnect_head
    if case.cut == "head":
        assert "last-event-id" not in reconnect_head, reconnect_head
    else:
        assert resumed_after_role or "last-event-id" not in reconnect_head, reconnect_head
    assert proxy.reconnect_delay_s < RESUME_GRACE_S
    # the text exactly once, and the generation ran to its end for this client
    assert server_side["error"] is None, server_side
    assert server_side["tokens"] == len(server_side["planned_delays_ns"]) > 0
    assert "".join(got["texts"]) == "".join(server_side["texts"])
    assert got["texts"] == server_side["texts"]
    if case.framing == "json":
        assert got["indices"] == list(range(server_side["tokens"]))
    else:
        assert got["starts"] == 1  # the role chunk once, whichever way the client reconnected
    facts = {
        "client": client,
        "framing": case.framing,
        "reconnect_delay_s": round(proxy.reconnect_delay_s, 3),
        "sse_requests": len(proxy.sse_requests),
        "last_event_id_on_reconnect": "-1" if resumed_after_role else None,
        "tcp_connections": proxy.connections,
    }
    print(facts)  # shown with -s: the measured reconnect delay
    return facts


# --- Node: the `eventsource` package ----------------------------------------------------


def eventsource_package() -> str:
    node = shutil.which("node")
    assert node is not None, "node is not installed: .ci/run needs Node.js (>= 18) and npm"
    installed = NODE_DIR / "node_modules" / "eventsource" / "package.json"
    assert installed.exists(), (
        f"{installed} is missing: run `npm ci --prefix tests/node` (.ci/run does)"
    )
    return node


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
async def test_node_eventsource_recovers_a_drop_before_the_first_token(
    slow_server: ServerProcess, case: Case
) -> None:
    server = slow_server
    node = eventsource_package()
    async with proxied(server, case) as proxy:
        stream_id, url = stream_url(proxy, case, "node")
        process = await asyncio.create_subprocess_exec(
            node,
            "eventsource.mjs",
            url,
            case.framing,
            cwd=NODE_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 50)
    assert process.returncode == 0, err.decode()
    got = json.loads(out)
    check(case, proxy, got, await timeline(server, stream_id), "node eventsource 3.0.7")
    assert got["opens"] == 2 and got["errors"] == 1, got


# --- Chromium ---------------------------------------------------------------------------

PAGE = """([url, framing]) => new Promise((resolve) => {
  const got = {texts: [], indices: [], ids: [], starts: 0, opens: 0, errors: 0};
  const es = new EventSource(url);
  const end = (why) => { es.close(); got.end = why; resolve(got); };
  setTimeout(() => end("no terminal event within 40 s"), 40000);
  es.onopen = () => { got.opens += 1; };
  es.onerror = () => {
    got.errors += 1;
    if (es.readyState === EventSource.CLOSED) end("EventSource closed");
  };
  es.onmessage = (event) => {
    got.ids.push(event.lastEventId);
    if (framing === "openai") {
      if (event.data === "[DONE]") return end("done");
      const delta = JSON.parse(event.data).choices?.[0]?.delta ?? {};
      if (delta.role) got.starts += 1;
      if (delta.content) got.texts.push(delta.content);
      return;
    }
    const message = JSON.parse(event.data);
    if (message.done === true) return end("done");
    got.indices.push(message.i);
    got.texts.push(message.t);
  };
})"""


@pytest.mark.browser
@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
async def test_chromium_eventsource_recovers_a_drop_before_the_first_token(
    slow_server: ServerProcess, case: Case
) -> None:
    server = slow_server
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright, proxied(server, case) as proxy:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{proxy.origin}/healthz")  # same origin as the stream
            stream_id, url = stream_url(proxy, case, "chromium")
            got = await page.evaluate(PAGE, [url, case.framing])
            version = browser.version
        finally:
            await browser.close()
    assert got["end"] == "done", got
    check(case, proxy, got, await timeline(server, stream_id), f"chromium {version}")
    assert got["opens"] == 2 and got["errors"] == 1, got
