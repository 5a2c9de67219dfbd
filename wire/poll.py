"""The polling envelope shared by short and long polling (pure: dict <-> records).

`GET /v1/streams/{id}?offset=k` answers `{"tokens":[{"i":k,"t":..},...], "next": k+n,
"done": bool}`; `done` is true once the stream has ended and every token up to `next`
has been handed out. `error` is present when the generation failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wire.messages import TokenMsg, WireError


@dataclass(frozen=True, slots=True)
class PollBatch:
    tokens: list[TokenMsg]
    next: int
    done: bool
    error: str | None = None


def encode_batch(
    offset: int, texts: Sequence[str], done: bool, error: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tokens": [{"i": offset + k, "t": t} for k, t in enumerate(texts)],
        "next": offset + len(texts),
        "done": done,
    }
    if error is not None:
        body["error"] = error
    return body


def decode_batch(body: Any) -> PollBatch:
    if not isinstance(body, dict):
        raise WireError("poll response must be a JSON object")
    try:
        tokens = [TokenMsg(i=int(t["i"]), text=str(t["t"])) for t in body["tokens"]]
        return PollBatch(
            tokens=tokens, next=int(body["next"]), done=bool(body["done"]), error=body.get("error")
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"malformed poll response: {exc!r}") from exc


def decode_created(body: Any) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise WireError('stream creation must answer {"id": "..."}')
    return body["id"]
