"""`bench.py probe` on OpenAI Responses API streams: recognised (SSE by `event:` or the data's
type; a WebSocket by its first message), text from the text deltas only, the tool call
named, and the findings that fit (`responses_truncated`, `responses_bad_event`,
`responses_event_names`; no `no_event_id`, no bogus `sse_framing`). The pure rules on
hand-made reads, fed whole, byte by byte and at every split; then the mock's own
`/v1/responses`, its SSE transport and its WebSocket, probed for real."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
from support import splits

import bench
from harness.measure.server_process import ServerProcess, running_server
from harness.probe.analyse import RunAnalysis, analyse_run
from harness.probe.exchange import Ending, Exchange, WSMessage
from harness.probe.http1 import Head
from harness.probe.verdict import judge
from servers.sources.mock import MockSource
from servers.sources.spec import SourceSpec, build_source
from wire import openai_responses
from wire.framing import OPENAI_RESPONSES
from wire.messages import GenerationRequest
from wire.sse import encode_event

T0 = 1_000_000_000
MS = 1_000_000
SSE_HEAD = (
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
)
TOKENS = ["Hi", " there", ", 東京 ", "😀"]


def payloads(tokens: Sequence[str], error: str | None = None) -> list[str]:
    """What `/v1/responses` sends for `tokens`: the end with the whole text."""
    framing = OPENAI_RESPONSES
    out = framing.encode_start("r1", "m")
    out += [framing.encode_token("r1", "m", i, t) for i, t in enumerate(tokens)]
    text = "".join(tokens)
    return out + openai_responses.end("r1", "m", len(tokens), error, text=text)


def sse(items: Sequence[str], named: bool = True) -> bytes:
    def name(payload: str) -> str | None:
        return openai_responses.event_type(payload) if named else None

    return b"".join(encode_event(p, event=name(p)) for p in items)


def exchange(pieces: Sequence[bytes]) -> Exchange:
    reads = [(T0 + (100 + 10 * i) * MS, p) for i, p in enumerate(pieces)]
    end = reads[-1][0] if reads else T0
    head = Head(200, "OK", SSE_HEAD)
    return Exchange("http", T0, head, T0, reads, end_ns=end, ending=Ending.COMPLETE)


def essence(run: RunAnalysis) -> tuple[object, ...]:
    return (
        run.kind,
        [(e.data, e.name) for e in run.events],
        run.text,
        run.reading.terminal,
        run.reading.error,
        run.reading.tool_calls,
        sorted(f.code for f in run.findings),
    )


def codes(run: RunAnalysis) -> list[str]:
    return [f.code for f in run.findings]


# --- the rules on hand-made reads ---------------------------------------------------------


def test_a_whole_stream_at_every_split() -> None:
    body = sse(payloads(TOKENS))
    whole = analyse_run(exchange([body]))
    assert whole.kind == "openai-responses" and whole.container == "sse"
    assert whole.text == "".join(TOKENS)  # the done events' text is not counted again
    assert whole.reading.terminal == 'type "response.completed"'
    assert whole.reading.finish_reason == "completed" and whole.reading.usage
    assert whole.reading.tool_calls == ["run_tool"]
    assert codes(whole) == []  # no no_event_id: OpenAI's streams carry no id either
    for pieces in splits(body):
        assert essence(analyse_run(exchange(pieces))) == essence(whole)


def test_the_kind_is_recognised_by_the_data_alone() -> None:
    """No `event:` fields (a server that leaves them out): still a Responses stream, with a
    warning that EventSource listeners would see nothing."""
    run = analyse_run(exchange([sse(payloads(TOKENS), named=False)]))
    assert run.kind == "openai-responses" and run.text == "".join(TOKENS)
    assert codes(run) == ["responses_event_names"]
    assert "no event: field for type 'response.created'" in run.findings[0].message


def test_the_kind_is_recognised_by_the_event_name_alone() -> None:
    body = b"event: response.created\ndata: not json\n\n" + sse(payloads(["a"])[1:])
    run = analyse_run(exchange([body]))
    assert run.kind == "openai-responses"
    assert codes(run) == ["responses_bad_event"]
    assert "'not json'" in run.findings[0].message


def test_a_cut_stream_is_truncated_not_badly_framed() -> None:
    events = [sse([p]) for p in payloads(TOKENS)[:6]]  # one read each
    run = analyse_run(exchange(events))
    assert run.kind == "openai-responses" and run.text == "Hi there"
    assert codes(run) == ["responses_truncated"]
    assert "6 events" in run.findings[0].message
    judged = judge([run], None)
    assert [f.code for f in judged.problems] == ["responses_truncated"]
    assert [f.code for f in judged.warnings] == ["no_terminal"]


def test_a_failed_response_is_a_stream_error() -> None:
    run = analyse_run(exchange([sse(payloads(["a"], error="the model broke"))]))
    assert codes(run) == ["stream_error"]
    assert run.reading.error == "the model broke"
    assert run.reading.terminal == 'type "response.failed"'


def test_an_error_event_is_a_stream_error() -> None:
    error = orjson.dumps({"type": "error", "code": "x", "message": "rate limited"}).decode()
    run = analyse_run(exchange([sse([*payloads(["a"])[:5], error])]))
    assert codes(run) == ["stream_error"] and run.reading.error == "rate limited"


def test_an_incomplete_response_ends_the_stream() -> None:
    incomplete = orjson.dumps(
        {
            "type": "response.incomplete",
            "sequence_number": 5,
            "response": {
                "id": "r1",
                "status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"},
                "usage": {"output_tokens": 1},
            },
        }
    ).decode()
    run = analyse_run(exchange([sse([*payloads(["a"])[:5], incomplete])]))
    assert codes(run) == [] and run.reading.finish_reason == "incomplete: max_output_tokens"


def test_a_completed_response_without_usage_is_a_warning() -> None:
    items = payloads(["a"])
    last = orjson.loads(items[-1])
    last["response"]["usage"] = None
    run = analyse_run(exchange([sse([*items[:-1], orjson.dumps(last).decode()])]))
    assert codes(run) == ["no_usage"]
    assert "response.completed" in run.findings[0].message


def test_a_websocket_of_responses_events() -> None:
    items = payloads(TOKENS)
    messages = [WSMessage(T0 + (10 + i) * MS, i, p) for i, p in enumerate(items)]
    head = Head(101, "Switching Protocols", ())
    ws = Exchange("websocket", T0, head, T0, [], end_ns=messages[-1].stamp_ns)
    ws.messages, ws.close_code = messages, 1000
    run = analyse_run(ws)
    assert run.kind == "websocket" and run.reading.responses
    assert run.text == "".join(TOKENS) and run.reading.tool_calls == ["run_tool"]
    assert codes(run) == []
    ws.messages = messages[:5]
    assert codes(analyse_run(ws)) == ["responses_truncated"]


# --- the mock, probed ---------------------------------------------------------------------

SPEC = SourceSpec(preset="chat", ttft_ms=20, tokens_per_s=200, tokens_per_response=30)


@pytest.fixture(scope="module")
def tokenwire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("probe-responses") / "server.log"
    with running_server(SPEC, Path(log)) as server:
        yield server


def probe(capsys: pytest.CaptureFixture[str], url: str, data: dict) -> tuple[int, dict]:
    args = ["probe", url, "--json", "--repeat", "2", "--timeout", "20"]
    status = bench.main([*args, "--data", orjson.dumps(data).decode()])
    return status, orjson.loads(capsys.readouterr().out)


def test_probe_reads_the_mocks_responses_endpoint(
    capsys: pytest.CaptureFixture[str], tokenwire: ServerProcess
) -> None:
    body = {"model": "m", "input": "hi", "stream": True, "seed": 4}
    status, report = probe(capsys, tokenwire.base_url + "/v1/responses", body)
    assert (status, report["verdict"], report["problems"], report["warnings"]) == (
        0,
        "streams",
        [],
        [],
    ), report
    assert report["kind"] == "openai-responses"
    assert report["terminal"] == 'type "response.completed"'
    assert report["tool_calls"] == ["run_tool"]
    source = build_source(SPEC)
    assert isinstance(source, MockSource)
    plan = source.plan(GenerationRequest(seed=4))
    assert report["text_chars"] == len("".join(plan.texts))
    assert report["events"] == len(plan.texts) + 4 + 9  # the start, a delta each, the end
    assert report["events_per_read"] < 3 and report["tail_share"] < 0.5


def test_probe_over_tokenwires_own_transports(
    capsys: pytest.CaptureFixture[str], tokenwire: ServerProcess
) -> None:
    sse_url = tokenwire.base_url + "/v1/sse?framing=openai-responses"
    status, report = probe(capsys, sse_url, {"seed": 2})
    assert (status, report["kind"], report["problems"]) == (0, "openai-responses", [])
    assert report["warnings"] == []  # the SSE transport names each event by its type
    ws_url = tokenwire.base_url.replace("http://", "ws://") + "/v1/ws"
    status, report = probe(capsys, ws_url, {"seed": 3, "framing": "openai-responses"})
    assert (status, report["kind"], report["problems"], report["warnings"]) == (
        0,
        "websocket",
        [],
        [],
    )
    assert report["tool_calls"] == ["run_tool"] and report["text"]
