"""One OpenAI-compatible chat completions stream, as both sides of a live run read it: the
relay's source (`servers.sources.live`) and `direct` (`clients.direct`). Pure: the request
body out, raw body bytes in (read by read), messages and findings out; no I/O.

The body is decoded as SSE (`wire.sse`) and each event's data with the `openai` framing's
decoder (`wire.framing`), so a token here is exactly what every transport's client counts.
What that framing leaves out of its messages is kept on the side: whether a `finish_reason`
and `[DONE]` came, the usage report and, per network read, its stamp, bytes and events.
When the body has ended, `problem()` names what made the stream unusable and `warnings()`
what did not, with the codes of `wire.problems` (the ones `bench.py probe` reports):

- `sse_framing`: bytes came but not one SSE event (say the `data:` field names are
  missing): the openai client, like EventSource, silently sees an empty answer.
- `not_streaming`: a 200 with an empty body.
- `truncated`: events came, then the body ended with neither a `finish_reason` nor
  `[DONE]`: the answer was cut off.
- `incomplete_end` (a warning): one of the two came, not both.
- `buffered` (a warning, `buffering`): the probe's rule on this one stream's reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wire.framing import OPENAI, OPENAI_DONE
from wire.messages import EndMsg, Message, loads
from wire.problems import (
    Finding,
    buffered_evidence,
    finding,
    looks_buffered,
    tail_share,
)
from wire.sse import SSEStreamDecoder

CHAT_PATH = "/chat/completions"  # below the upstream's base URL (which ends in /v1)
SAMPLE_BYTES = 4096  # of the body, kept as evidence


def messages_for(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt or "Say hello."}]


def chat_request(
    model: str, prompt: str, seed: int, max_tokens: int | None, temperature: float | None
) -> dict[str, Any]:
    """The streamed chat completions request both sides send for one prompt (usage asked
    for; `max_tokens` and `temperature` only when set)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages_for(prompt),
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": seed,
    }
    if max_tokens:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    return body


@dataclass(frozen=True, slots=True)
class Read:
    """One network read of the body: when it returned, its bytes, the events it completed."""

    stamp_ns: int
    size: int
    events: int


class OpenAIStreamReader:
    """Feed each network read's bytes (`feed`), then `close()` at the end of the body;
    messages come out as the `openai` framing decodes them (`TokenMsg`, `EndMsg` for
    `[DONE]` or an error object, `IgnoredMsg`). A payload the framing cannot decode raises
    `ProtocolError`, as in every transport's client."""

    def __init__(self) -> None:
        self._sse = SSEStreamDecoder()
        self.reads: list[Read] = []
        self.events = 0
        self.body_bytes = 0
        self.sample = b""  # the body's first SAMPLE_BYTES
        self.last_payload = ""
        self.finish_reason: str | None = None
        self.done_marker = False  # `[DONE]` came
        self.usage_tokens: int | None = None  # usage.completion_tokens, when reported
        self.error: str | None = None  # an error object's message, when one came

    def feed(self, data: bytes, now_ns: int = 0) -> list[Message]:
        if len(self.sample) < SAMPLE_BYTES:
            self.sample += data[: SAMPLE_BYTES - len(self.sample)]
        self.body_bytes += len(data)
        payloads = [event.data for event in self._sse.feed(data)]
        if data:
            self.reads.append(Read(now_ns, len(data), len(payloads)))
        return self._messages(payloads)

    def close(self) -> list[Message]:
        """End of body: what the decoder still holds (an unterminated event is dropped)."""
        payloads = [event.data for event in self._sse.close()]
        if payloads and self.reads:
            last = self.reads[-1]
            self.reads[-1] = Read(last.stamp_ns, last.size, last.events + len(payloads))
        return self._messages(payloads)

    def _messages(self, payloads: list[str]) -> list[Message]:
        messages = []
        for payload in payloads:
            self.events += 1
            self.last_payload = payload
            message = OPENAI.decode(payload)
            if payload == OPENAI_DONE:
                self.done_marker = True
            elif isinstance(message, EndMsg):
                self.error = message.error
            else:
                self._note(payload)
            messages.append(message)
        return messages

    def _note(self, payload: str) -> None:
        """What the framing's decoder leaves out: finish_reason and usage."""
        obj = loads(payload)  # the decoder has parsed it already: an object with choices
        for choice in obj.get("choices") or ():
            if isinstance(choice, dict) and choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        usage = obj.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.usage_tokens = usage["completion_tokens"]

    # --- findings, once the body has ended -----------------------------------------------

    def problem(self) -> Finding | None:
        """What made the stream unusable, if anything (an error object is not judged here:
        the framing's `EndMsg` carries it, and it fails the stream as `stream_error`)."""
        if self.error is not None:
            return None
        if not self.events:
            if not self.sample.strip():
                return finding("not_streaming", "the body is empty")
            return finding("sse_framing", self._framing_evidence())
        if not self.finish_reason and not self.done_marker:
            return finding(
                "truncated", f"{self.events} events, the last {self.last_payload[:80]!r}"
            )
        return None

    def _framing_evidence(self) -> str:
        text = self.sample.decode("utf-8", "replace")
        first = next((line for line in text.splitlines() if line.strip()), "")
        what = "no event is ended by a blank line"
        if not any(line.startswith("data:") for line in text.splitlines()):
            what = "no data: line at all"
        return f"{self.body_bytes} bytes and not one event ({what}), the first line {first[:80]!r}"

    def warnings(self) -> list[Finding]:
        if self.error is not None or self.problem() is not None:
            return []
        if not (self.finish_reason and self.done_marker):
            missing = "data: [DONE]" if self.finish_reason else "a finish_reason"
            return [finding("incomplete_end", f"no {missing}")]
        return []

    def buffering(self, t0_ns: int) -> Finding | None:
        """The `buffered` rule (`wire.problems`) on this stream's reads, timed from `t0_ns`
        (the request)."""
        reads = [r for r in self.reads if r.size]
        if not reads:
            return None
        per_read = self.events / len(reads)
        share = tail_share([(r.stamp_ns, r.size) for r in reads], t0_ns)
        if share is None or not looks_buffered(self.events, share, per_read):
            return None
        e2e_ms = (reads[-1].stamp_ns - t0_ns) / 1e6
        return finding(
            "buffered", buffered_evidence(self.events, len(reads), per_read, share, e2e_ms)
        )
