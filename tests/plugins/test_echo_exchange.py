"""The echo transport's exchange logic (tests/plugins/echo_client.py), run by the scripted
driver (`clients.scripted_io`): no server, no sockets, no clock. Each test hands the logic
what a server would send, written with the wire codecs and stamped by the script, and
checks the request it sent and what it recorded."""

from __future__ import annotations

from clients.exchange import Arrival, Reply
from clients.interface import ClientSettings
from clients.scripted_io import Step, run_script
from errors import ErrorKind
from plugins.echo_client import echo_exchange
from wire.framing import JSON
from wire.messages import GenerationRequest
from wire.ndjson import MEDIA_TYPE, encode_line

SID, MODEL, TEXTS = "s1", "m", ["Hel", "lo", "!"]
REQUEST = GenerationRequest(seed=7, max_tokens=len(TEXTS), stream_id=SID)
SETTINGS = ClientSettings("http://scripted.invalid", framing="json")
HEAD = Reply(200, {"content-type": MEDIA_TYPE}, b"", "/test/echo", now_ns=100)


def line(i: int) -> bytes:
    """Token i as the server writes it: one NDJSON line in the json framing."""
    return encode_line(JSON.encode_token(SID, MODEL, i, TEXTS[i]))


END = b"".join(encode_line(p) for p in JSON.encode_end(SID, MODEL, len(TEXTS), None))


def test_a_stream_is_read_to_its_terminal_line() -> None:
    script: list[Step] = [
        HEAD,
        Arrival(line(0), now_ns=110),
        Arrival(line(1) + line(2) + END, now_ns=120),
    ]
    run = run_script(echo_exchange, script, SETTINGS, REQUEST)
    [call] = run.calls()
    assert (call.method, call.url, call.params) == ("POST", "/test/echo", {"framing": "json"})
    assert call.json == REQUEST.to_json()
    result = run.result
    assert result.error is None
    assert result.texts == TEXTS and result.indices == [0, 1, 2]
    assert result.recv_ns == [110, 120, 120]  # each token stamped by the read that brought it
    assert result.end_ns == 120 and result.end_tokens == len(TEXTS)


def test_a_token_cut_across_reads_is_stamped_by_the_read_that_completes_it() -> None:
    first, rest = line(0)[:4], line(0)[4:]
    script: list[Step] = [HEAD, Arrival(first, now_ns=110), Arrival(rest, now_ns=115)]
    script += [Arrival(line(1) + line(2) + END, now_ns=120)]
    result = run_script(echo_exchange, script, SETTINGS, REQUEST).result
    assert result.recv_ns == [115, 120, 120] and result.end_ns == 120


def test_a_body_that_ends_before_the_terminal_line_is_incomplete() -> None:
    script: list[Step] = [HEAD, Arrival(line(0), now_ns=110), None]  # None: the body ended
    error = run_script(echo_exchange, script, SETTINGS, REQUEST).result.error
    assert error is not None and error.kind is ErrorKind.INCOMPLETE


def test_a_refused_request_fails_with_its_status() -> None:
    refused = Reply(400, {}, b'{"error":"no such framing"}', "/test/echo", now_ns=100)
    error = run_script(echo_exchange, [refused], SETTINGS, REQUEST).result.error
    assert error is not None and error.kind is ErrorKind.HTTP_STATUS
    assert "HTTP 400 from /test/echo" in error.message


def test_a_client_told_to_leave_drops_the_connection_and_ends() -> None:
    leaving = ClientSettings("http://scripted.invalid", leave_at_token=2)
    script: list[Step] = [
        HEAD,
        Arrival(line(0) + line(1), now_ns=110),
        111,
    ]  # 111: the drop's stamp
    result = run_script(echo_exchange, script, leaving, REQUEST).result
    assert result.indices == [0, 1] and result.left_ns == 111
    assert result.end_ns is None and result.error is None
