"""The one-file report: everything in it, nothing fetched, and it renders in a real browser."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import TRANSPORT_NAMES, bench
from synthetic_runs import synthetic_run, synthetic_sweep
from websockets.asyncio.client import ClientConnection, connect

from bench import main
from harness.analyse.metrics import TransportSummary
from harness.analyse.results import RunResult, save_run
from harness.measure.browser.session import CHROMIUM, CHROMIUM_ARGS
from harness.present import plots, report
from harness.present.plots import CHARTS

ROOT = Path(__file__).resolve().parents[3]
# the browser client's flags (a Chromium that does not call home), and a DevTools port
CHROMIUM_FLAGS = (
    *CHROMIUM_ARGS,
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


@pytest.fixture(scope="module")
def plain_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`bench.py report RUN_DIR` on a saved synthetic run (all charts drawn)."""
    run_dir = tmp_path_factory.mktemp("plain")
    save_run(synthetic_run(), run_dir)
    assert main(["report", str(run_dir)]) == 0
    return run_dir / "report.html"


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep's report; of its charts only the sweep chart is drawn (the per-point charts
    are the plain run's)."""
    run_dir = tmp_path_factory.mktemp("sweep")
    run = synthetic_sweep("poll_interval_ms", [25, 100, 400])
    save_run(run, run_dir)
    chart = plots.draw(CHARTS["sweep_poll_interval"], [plots.subject(run)], run_dir)
    path = run_dir / "report.html"
    path.write_text(report.render_report(run, [chart], run_dir), encoding="utf-8")
    return path


def test_report_names_every_transport_metric_and_definition(plain_report: Path) -> None:
    text = plain_report.read_text(encoding="utf-8")
    for transport in TRANSPORT_NAMES:
        assert f"</span>{transport}</td>" in text, transport
    for f in fields(TransportSummary):  # every metric, by its name in results.json
        if f.name.endswith("_ci"):  # an interval: shown with its figure (±)
            assert f"<code>{f.name.removesuffix('_ci')}" in text, f.name
        else:
            assert f"<code>{f.name}" in text, f.name
    assert '<span class="ci">±' in text  # the intervals, rendered
    for column in report.VERDICT:
        assert report.esc(column.header) in text, column.header
    for term in ("TTFT (time to first token)", "ITL (inter-token latency)", "Added delay"):
        assert f"<dt>{report.esc(term)}" in text, term
    for chart in CHARTS.values():
        if chart.every_run:
            assert f'<figure id="{chart.stem}">' in text, chart.stem
    assert "scenario synthetic" in text and "cpu_count" in text  # scenario and environment


def test_report_is_self_contained(plain_report: Path, sweep_report: Path) -> None:
    for path in (plain_report, sweep_report):
        text = path.read_text(encoding="utf-8")
        references = re.findall(r'(?:src|href|url)\s*[=(]\s*["\']?([^"\')\s>]+)', text)
        assert references and all(ref.startswith("data:image/png;base64,") for ref in references)
        assert "<script" not in text and "<link" not in text and "@import" not in text
        assert "default-src 'none'" in text  # the page itself forbids fetching anything


def test_sweep_report_has_a_verdict_per_point_and_the_sweep_chart(sweep_report: Path) -> None:
    text = sweep_report.read_text(encoding="utf-8")
    for value in (25, 100, 400):
        assert f"<h3>poll_interval_ms = {value}</h3>" in text
    assert text.count('<table class="verdict">') == 3
    assert '<figure id="sweep_poll_interval">' in text


def test_the_best_value_or_the_tied_values_of_each_column_are_marked() -> None:
    """A single best is marked `best`; transports whose intervals overlap the best one's are
    marked `tied` together; a column where every transport is equal marks nothing."""
    summaries = synthetic_run().summaries
    table = report.verdict_table(summaries)
    rows = {
        name: re.findall(r'<td(?: class="(best|tied)")?>([^<]*)', row)
        for name, row in re.findall(r"</span>(\w+)</td>(.*?)</tr>", table)
    }
    assert set(rows) == set(TRANSPORT_NAMES)
    best = report.best_values(summaries, report.VERDICT)
    for k, column in enumerate(report.VERDICT):
        marked = {name: cells[k][0] for name, cells in rows.items() if cells[k][0]}
        top = best[k]
        if top is None:  # every transport equal: nothing to single out
            assert not marked, column.header
            continue
        assert set(marked) == set(top.leaders), column.header
        assert set(marked.values()) == {"tied" if top.tied else "best"}, column.header
    requests = next(k for k, c in enumerate(report.VERDICT) if c.header == "requests per stream")
    top = best[requests]
    assert top is not None and set(top.leaders) == {"sse", "chunked", "websocket", "webtransport"}


def test_definitions_come_from_the_metrics_docstring() -> None:
    rendered = report.definitions("Title line.\n\n- A term: its text\n  continued.\n\nA note.")
    assert (
        rendered
        == '<dl class="defs"><dt>A term</dt><dd>its text continued.</dd></dl><p>A note.</p>'
    )


def test_report_command_writes_report_html_and_charts(plain_report: Path) -> None:
    assert plain_report.stat().st_size > 10_000
    for chart in CHARTS.values():
        if chart.every_run:
            assert (plain_report.parent / f"{chart.stem}.svg").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["report", "no/such/run"], "no/such/run is not a run folder"),
        (["report", "."], "no results.json in ."),
        (["report"], "the following arguments are required: RUN_DIR"),
    ],
)
def test_report_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines


@pytest.mark.slow
def test_run_json_quiet_prints_only_the_json_and_writes_the_report(tmp_path: Path) -> None:
    done = bench(
        "run", "--transports", "sse", "--requests", "2", "--concurrency", "2",
        "--warmup", "0", "--ttft-ms", "5", "--tokens-per-s", "1000",
        "--tokens-per-response", "10", "--json", "--quiet", "--out", str(tmp_path),
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --quiet: no progress, no table
    data = orjson.loads(done.stdout)  # --json: stdout is the JSON and nothing else
    assert data["run_dir"] == str(tmp_path)
    assert set(data["transports"]) == {"sse"}
    assert data["transports"]["sse"]["ttft_ms"]["p50"] > 0
    assert (tmp_path / "report.html").stat().st_size > 0  # run writes the report itself


# --- headless Chromium ------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if found is None:
        pytest.fail(
            "headless Chromium is needed to check report.html and is not installed: "
            "apt-get update && apt-get install -y chromium (.ci/run does this)",
            pytrace=False,
        )
    return found


class DevTools:
    """A minimal Chrome DevTools Protocol client: commands in order, events collected."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.events: list[dict[str, Any]] = []
        self.last_id = 0

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        self.last_id += 1
        message: dict[str, Any] = {"id": self.last_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(await self.socket.recv())
            if reply.get("id") == self.last_id:
                assert "error" not in reply, (method, reply["error"])
                return reply.get("result", {})
            self.events.append(reply)

    async def wait_for(self, method: str) -> dict[str, Any]:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(json.loads(await self.socket.recv()))
        return next(e for e in self.events if e.get("method") == method)


async def devtools_url(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    while line := await process.stderr.readline():
        found = re.search(rb"DevTools listening on (ws://\S+)", line)
        if found:
            return found.group(1).decode()
    raise AssertionError("chromium exited before it opened its DevTools socket")


async def render(page: Path, profile: Path) -> dict[str, Any]:
    """Open `page` in headless Chromium; return what loaded, what failed and the images."""
    process = await asyncio.create_subprocess_exec(
        chromium(),
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(60):
            url = await devtools_url(process)
            async with connect(url, max_size=2**24) as socket:
                tools = DevTools(socket)
                target = await tools.call("Target.createTarget", url="about:blank")
                attached = await tools.call(
                    "Target.attachToTarget", targetId=target["targetId"], flatten=True
                )
                session = attached["sessionId"]
                for domain in ("Page", "Runtime", "Log", "Network"):
                    await tools.call(f"{domain}.enable", session)
                await tools.call("Page.navigate", session, url=page.as_uri())
                await tools.wait_for("Page.loadEventFired")
                images = await tools.call(
                    "Runtime.evaluate",
                    session,
                    expression="JSON.stringify(Array.from(document.images, i => "
                    "({alt: i.alt, complete: i.complete, width: i.naturalWidth})))",
                    returnByValue=True,
                )
                rows = await tools.call(
                    "Runtime.evaluate",
                    session,
                    expression="document.querySelectorAll('table.verdict tr').length",
                    returnByValue=True,
                )
                intervals = await tools.call(  # as rendered: visible, with their text
                    "Runtime.evaluate",
                    session,
                    expression="JSON.stringify(Array.from(document.querySelectorAll("
                    "'table.verdict span.ci'), s => ({text: s.innerText, "
                    "shown: s.getBoundingClientRect().width > 0})))",
                    returnByValue=True,
                )
                await asyncio.sleep(0.2)  # late console messages
                await tools.call("Runtime.evaluate", session, expression="1")
                return {
                    "events": tools.events,
                    "images": json.loads(images["result"]["value"]),
                    "verdict_rows": rows["result"]["value"],
                    "intervals": json.loads(intervals["result"]["value"]),
                }
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def test_report_renders_in_headless_chromium(plain_report: Path, tmp_path: Path) -> None:
    seen = asyncio.run(render(plain_report, tmp_path / "profile"))
    events = seen["events"]
    errors = [
        e
        for e in events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or e.get("method") == "Network.loadingFailed"
    ]
    assert not errors, errors
    fetched = [
        e["params"]["request"]["url"]
        for e in events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert fetched and all(url.startswith(("file://", "data:")) for url in fetched), fetched
    drawn = {c.title for c in CHARTS.values() if c.every_run}
    assert {image["alt"] for image in seen["images"]} == drawn
    assert all(image["complete"] and image["width"] > 0 for image in seen["images"])
    assert seen["verdict_rows"] == 1 + len(TRANSPORT_NAMES)
    # every verdict figure with an interval shows it: TTFT and added delay p50 and p99,
    # bytes per token and requests per stream, for every transport
    shown = seen["intervals"]
    assert len(shown) == 6 * len(TRANSPORT_NAMES), shown
    assert all(i["shown"] and re.fullmatch(r"±[0-9.,e-]+", i["text"]) for i in shown), shown


def test_report_of_a_run_folder_loads_again(plain_report: Path) -> None:
    run_dir, run = report.load_run_dir(plain_report.parent / "results.json")
    assert run_dir == plain_report.parent and isinstance(run, RunResult)
