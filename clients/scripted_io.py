"""The scripted driver: runs any `ExchangeLogic` with no I/O, answering its effects from a
script of canned replies, and records what it asked for. For tests, and for anyone writing
a transport: its client logic, drop, leave and resume included, runs in microseconds
without a server, and the test asserts the requests it sent and the tokens it recorded.

    run = run_script(sse.exchange, [
        Reply(200, {"content-type": "text/event-stream"}, b"", "/v1/sse", now_ns=10),
        Arrival(encode_event('{"i":0,"t":"Hi"}', "0"), now_ns=20),
        Arrival(encode_event('{"done":true,"n":1,"id":"s"}'), now_ns=30),
        None,  # the end of the body
    ])
    assert run.result.texts == ["Hi"] and run.result.recv_ns == [20]
    assert run.calls()[0].url == "/v1/sse"

The time is handed in with each reply, never read: exchange logic never reads the clock
(h11's rule: the driver gives it the time with each event), and this driver has none.
Every stamp a result holds comes from the script.

The script answers, in order, each effect whose reply carries data or a time:

| effect | the script's step |
| --- | --- |
| `Fetch`, `OpenStream` | a `Reply` |
| `ReadBody`, `ReceiveMessage` | an `Arrival`, or None: the end of the body, a clean close |
| `Drop` | an int: the stamp of the drop |
| `ReceiveCallback` | a `Callback`, or None: none came in time |

The driver answers the others itself: `Sleep`, `OpenWebSocket`, `OpenWebTransport`, `SendText` and
`AnswerCallback` with None, `ListenForCallbacks` with `callback_url`. In place of any
scripted reply a step may be a `TransportError` (an instance), which the driver raises as
a real driver raises a failed read or request. As in the real drivers, a `TransportError`
ends the stream and is recorded in `StreamResult.error`, and codec errors become
`ProtocolViolation`s (`Steps`). The driver does no accounting: requests, head and wire
bytes stay 0.

A script that does not fit the exchange (a step of the wrong type for the effect, too few
steps, steps left over once the exchange ended) raises `ScriptMismatch`, naming the step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from clients import exchange as effects
from clients.exchange import Arrival, Callback, Effect, ExchangeLogic, HTTPCall, Reply
from clients.interface import ClientSettings, StreamResult, failures_recorded
from errors import TransportError
from wire.messages import GenerationRequest

Step = Reply | Arrival | Callback | int | TransportError | None
CALLBACK_URL = "http://127.0.0.1:9/callbacks/scripted"
SETTINGS = ClientSettings("http://scripted.invalid")
REQUEST = GenerationRequest(stream_id="scripted")

# What the script answers each effect with (a `TransportError` may stand for any of them).
SCRIPTED: dict[type[Effect], tuple[type, ...]] = {
    effects.Fetch: (Reply,),
    effects.OpenStream: (Reply,),
    effects.ReadBody: (Arrival, type(None)),
    effects.ReceiveMessage: (Arrival, type(None)),
    effects.Drop: (int,),
    effects.ReceiveCallback: (Callback, type(None)),
}
# The effects the driver answers with None itself (and `ListenForCallbacks`, with the URL).
ANSWERED = (
    effects.Sleep,
    effects.OpenWebSocket,
    effects.OpenWebTransport,
    effects.SendText,
    effects.AnswerCallback,
)


class ScriptMismatch(AssertionError):
    """The script does not fit the exchange: a step of the wrong type, too few or too many."""


@dataclass(slots=True)
class ScriptedRun:
    """One exchange run from a script: the result it recorded, and every effect it yielded,
    in order (scripted or not)."""

    result: StreamResult
    effects: list[Effect] = field(default_factory=list)

    def calls(self) -> list[HTTPCall]:
        """The HTTP requests sent (`Fetch` and `OpenStream`), in order."""
        return [e.call for e in self.effects if isinstance(e, effects.Fetch | effects.OpenStream)]

    def sent(self) -> list[str]:
        """The WebSocket text messages sent, in order."""
        return [e.text for e in self.effects if isinstance(e, effects.SendText)]

    def sleeps(self) -> list[float]:
        """The seconds of each `Sleep`, in order."""
        return [e.seconds for e in self.effects if isinstance(e, effects.Sleep)]

    def answers(self) -> list[int]:
        """The status of each callback answered, in order."""
        return [e.status for e in self.effects if isinstance(e, effects.AnswerCallback)]


def run_script(
    logic: ExchangeLogic,
    script: Iterable[Step],
    settings: ClientSettings = SETTINGS,
    request: GenerationRequest = REQUEST,
    transport: str = "scripted",
    callback_url: str = CALLBACK_URL,
) -> ScriptedRun:
    """Run `logic` for one stream of `request`, its effects answered from `script`."""
    steps = deque(script)
    run = ScriptedRun(StreamResult.start(transport, request, scheduled_ns=0))
    with failures_recorded(run.result):
        exchange = effects.Steps(logic(settings, request, run.result))
        try:
            reply: object = None
            while (effect := exchange.send(reply)) is not None:
                run.effects.append(effect)
                if isinstance(effect, effects.ListenForCallbacks):
                    reply = callback_url
                elif isinstance(effect, ANSWERED):
                    reply = None
                else:
                    reply = scripted_reply(effect, steps, len(run.effects))
        finally:
            exchange.close()
    if steps:
        ended = "failed" if run.result.error is not None else "ended"
        raise ScriptMismatch(
            f"the exchange {ended} after {len(run.effects)} effects with {len(steps)} "
            f"step(s) of the script left, the first {steps[0]!r} (error: {run.result.error})"
        )
    return run


def scripted_reply(effect: Effect, steps: deque[Step], number: int) -> object:
    """The script's next step as the reply to `effect` (the exchange's effect `number`,
    from 1); a `TransportError` is raised."""
    if not steps:
        raise ScriptMismatch(f"effect {number}, {effect!r}: the script has no step left")
    step = steps.popleft()
    if isinstance(step, TransportError):
        raise step
    expected = SCRIPTED[type(effect)]
    if not isinstance(step, expected) or isinstance(step, bool):
        names = " or ".join("None" if t is type(None) else t.__name__ for t in expected)
        raise ScriptMismatch(f"effect {number}, {effect!r}: expected {names}, got {step!r}")
    return step
