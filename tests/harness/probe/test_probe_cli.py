"""`bench.py probe` against small misbehaving servers: each gets its named problem and exit
status 1; endpoints that stream get `streams` and exit 0; bad input exits 2 with one line."""

from __future__ import annotations

import socket
from collections.abc import Callable

import orjson
import probe_servers as ps
import pytest
from support import bench as bench_subprocess

import bench

Handler = Callable[..., object]


def probe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    """`bench.py probe ARGS --json` in this process: exit status and the JSON object."""
    status = bench.main(["probe", *args, "--json", "--repeat", "2", "--timeout", "10"])
    out = capsys.readouterr().out
    return status, orjson.loads(out)


def codes(report: dict, key: str = "problems") -> list[str]:
    return [f["code"] for f in report[key]]


MISBEHAVING = [
    (ps.buffering_sse, "buffered"),
    (ps.sse_without_data, "sse_framing"),
    (ps.regenerating_sse, "reconnect_loop"),
    (ps.gzip_sse, "compressed"),
    (ps.truncated_openai, "truncated"),
    (ps.sse_as_text_plain, "wrong_content_type"),
    (ps.buffered_text, "buffered"),
    (ps.not_found, "http_status"),
]


@pytest.mark.parametrize(("handler", "code"), MISBEHAVING, ids=lambda v: getattr(v, "__name__", v))
def test_misbehaving_endpoint_gets_its_named_problem(
    capsys: pytest.CaptureFixture[str], handler: ps.Handler, code: str
) -> None:
    with ps.ScriptedServer(handler) as server:
        status, report = probe(capsys, server.url("/stream"))
    assert status == 1
    assert report["verdict"] == "problems"
    assert code in codes(report), report["problems"]
    for problem in report["problems"]:
        assert problem["message"] and problem["fix"]


def test_reconnect_is_made_as_eventsource_makes_it(capsys: pytest.CaptureFixture[str]) -> None:
    with ps.ScriptedServer(ps.regenerating_sse) as server:
        probe(capsys, server.url("/stream?q=1"))
    first, second = server.requests[0], server.requests[1]
    assert second.target == first.target == "/stream?q=1"
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == "7"  # the last id the stream sent


def test_compressed_but_flushed_per_event_streams(capsys: pytest.CaptureFixture[str]) -> None:
    with ps.ScriptedServer(ps.gzip_sse_flushed) as server:
        status, report = probe(capsys, server.url())
    assert (status, report["verdict"], report["problems"]) == (0, "streams", [])
    assert report["headers"]["content-encoding"] == "gzip"
    assert report["text"].strip().startswith("Streaming is how")


def test_flask_style_text_stream_streams(capsys: pytest.CaptureFixture[str]) -> None:
    with ps.ScriptedServer(ps.flask_text) as server:
        status, report = probe(capsys, server.url())
    assert status == 0 and report["verdict"] == "streams", report["problems"]
    assert report["kind"] == "text"
    assert report["text"] == " ".join(ps.WORDS)
    assert codes(report, "warnings") == ["proxy_may_buffer"]
    assert report["events_per_read"] < 3


def test_strict_turns_warnings_into_problems(capsys: pytest.CaptureFixture[str]) -> None:
    with ps.ScriptedServer(ps.flask_text) as server:
        status, report = probe(capsys, server.url(), "--strict")
    assert status == 1 and codes(report) == ["proxy_may_buffer"] and report["warnings"] == []


def test_good_sse_streams_without_findings(capsys: pytest.CaptureFixture[str]) -> None:
    with ps.ScriptedServer(ps.good_sse) as server:
        status, report = probe(capsys, server.url())
    assert status == 0
    assert report["problems"] == report["warnings"] == []
    assert report["events"] == 21 and report["terminal"] == '{"done": true}'
    assert report["runs"] == 2 and len(report["per_run"]) == 2


def test_websocket_closed_without_close_frame(capsys: pytest.CaptureFixture[str]) -> None:
    with ps.ScriptedServer(ps.ws_without_close_frame) as server:
        status, report = probe(capsys, server.url("/ws", scheme="ws"), "--data", "{}")
    assert status == 1
    assert codes(report) == ["ws_close"]
    assert "without a WebSocket close frame" in report["problems"][0]["message"]
    assert report["events"] == 6


def test_connection_refused_is_a_problem(capsys: pytest.CaptureFixture[str]) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    status, report = probe(capsys, f"http://127.0.0.1:{port}/")
    assert status == 1 and codes(report) == ["connection_error"]


def test_text_report_names_the_problem_and_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with ps.ScriptedServer(ps.buffering_sse) as server:
        status = bench.main(["probe", server.url(), "--repeat", "1"])
    out = capsys.readouterr().out
    assert status == 1
    assert "verdict: problems" in out
    assert "buffered" in out and "fix: flush after every event" in out


def test_api_key_from_the_environment_is_sent_but_never_printed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-5f3c9a1e7d"
    monkeypatch.setenv("PROBE_TEST_KEY", secret)
    with ps.ScriptedServer(ps.echo_authorization) as server:
        args = ["probe", server.url(), "--header-from-env", "Authorization=Bearer $PROBE_TEST_KEY"]
        assert bench.main([*args, "--repeat", "1"]) == 0
        text = capsys.readouterr().out
        assert bench.main([*args, "--repeat", "1", "--json"]) == 0
        raw = capsys.readouterr().out
    assert server.requests[0].headers["authorization"] == f"Bearer {secret}"
    for output in (text, raw):
        assert secret not in output
        assert "<redacted>" in output
    assert "Authorization: <from $PROBE_TEST_KEY>" in text


# Bad usage of `probe` (exit 2, one line, a refused credential never echoed) is tested with
# every other command's in tests/test_bench.py (BAD_INPUTS).


def test_the_real_command_in_a_subprocess() -> None:
    """`python bench.py probe` as a user runs it: exit 1 and the named problem."""
    with ps.ScriptedServer(ps.sse_without_data) as server:
        done = bench_subprocess("probe", server.url(), "--repeat", "1", "--json", timeout=60)
    assert done.returncode == 1, done.stderr
    assert codes(orjson.loads(done.stdout)) == ["sse_framing"]
