"""`direct`: the same prompts straight from the live upstream, no tokenwire server in between.
Reported beside the five transports, so the relay's own cost shows as the difference.

An exchange logic like every transport's (no I/O here), run by the asyncio driver: it POSTs
the chat completions request itself (`wire.openai_stream.chat_request`, the body the relay's
source sends) and reads the body read by read with the pure reader the relay's source uses
(`wire.openai_stream`: `wire.sse`'s decoder, then the `openai` framing's). So every token is
stamped as the network read that completed it returned, `chunk_sizes` counts tokens per
network read as for every transport, and bytes come from the upstream connection's TCP_INFO
counters (the driver's accounting). The API key reaches the driver's pooled client as its
bearer token (`direct_settings`), from the environment as for the relay; `ClientSettings`
keeps it out of its repr, and nothing here writes it anywhere.

Problems with the upstream's answer are recorded in `StreamResult.problems` with the codes
of `wire.problems`: `http_status`, `stream_error`, `sse_framing`, `not_streaming` and
`truncated` fail the stream (severity `problem`); `incomplete_end` and `buffered` (the
probe's rule on this stream's read stamps) are warnings on a stream that completed.
"""

from __future__ import annotations

from dataclasses import replace

from clients.exchange import READ_BODY, Exchange, ExchangeLogic, HTTPCall, OpenStream, Reply
from clients.interface import ClientSettings, StreamResult
from errors import HTTPStatusFailed, ProtocolViolation, StreamIncomplete, UpstreamFailed
from servers.sources.live import api_key_from_env
from servers.sources.spec import SourceSpec
from wire.messages import GenerationRequest
from wire.openai_stream import CHAT_PATH, OpenAIStreamReader, chat_request
from wire.problems import Finding, Severity, finding
from wire.sse import MEDIA_TYPE

# Failures whose stream cannot be used, and the error each becomes in the results.
FAILURES = {"sse_framing": ProtocolViolation, "not_streaming": StreamIncomplete}


def direct_settings(settings: ClientSettings, source: SourceSpec) -> ClientSettings:
    """The run's client settings, pointed at the upstream: its base URL and its API key as
    the bearer token, instead of the tokenwire server's URL, token and path (and no faults:
    nothing to resume)."""
    assert source.base_url
    return replace(
        settings,
        base_url=source.base_url,
        token=api_key_from_env(),
        http2=False,
        http3=False,
        ca_file=None,
        drop_at_token=0,
        leave_at_token=0,
    )


def record(result: StreamResult, found: Finding, severity: Severity) -> None:
    result.problems.append(
        {"code": found.code, "severity": severity.value, "message": found.message}
    )


def direct_exchange(source: SourceSpec) -> ExchangeLogic:
    """The exchange logic of `direct` for the upstream `source` names."""
    assert source.model

    def exchange(
        settings: ClientSettings, request: GenerationRequest, result: StreamResult
    ) -> Exchange:
        body = chat_request(
            str(source.model),
            request.prompt,
            request.seed,
            request.max_tokens or source.max_tokens,
            source.temperature,
        )
        headers = {"accept": MEDIA_TYPE, "accept-encoding": "identity"}
        call = HTTPCall("POST", CHAT_PATH, json=body, headers=headers)
        reply: Reply = yield OpenStream(call)
        if reply.status != call.expected_status:
            text = " ".join(reply.body[:300].decode(errors="replace").split())
            found = finding("http_status", f"{reply.status}: {text}")
            record(result, found, Severity.PROBLEM)
            raise HTTPStatusFailed(f"{found.code}: {found.message}")
        reader = OpenAIStreamReader()
        last_ns = reply.now_ns
        try:
            while (arrival := (yield READ_BODY)) is not None:
                assert isinstance(arrival.data, bytes)
                messages = reader.feed(arrival.data, arrival.now_ns)
                last_ns = arrival.now_ns
                if messages:
                    result.take(messages, last_ns)
            tail = reader.close()
            if tail:
                result.take(tail, last_ns)
        except UpstreamFailed as exc:  # an error object in the stream
            record(result, finding("stream_error", str(exc)), Severity.PROBLEM)
            raise
        result.end_tokens = reader.usage_tokens
        problem = reader.problem()
        if problem is not None:
            record(result, problem, Severity.PROBLEM)
            raise FAILURES.get(problem.code, StreamIncomplete)(f"{problem.code}: {problem.message}")
        for warning in [*reader.warnings(), reader.buffering(result.scheduled_ns)]:
            if warning is not None:
                record(result, warning, Severity.WARNING)
        if result.end_ns is None:  # a finish_reason without [DONE]: complete, with a warning
            result.end_ns = last_ns

    return exchange
