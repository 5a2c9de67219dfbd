"""The server's state as endpoints see it: the source, the settings and the generations,
and the few operations on them every transport needs.

With tokens set, `state_of` carries the caller's principal (`servers.access`): a new
generation records it as its owner, and another principal's streams are not found (404),
exactly as if they did not exist."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from starlette.requests import HTTPConnection

from errors import RequestRefused
from servers.generation import Generation, Generations, StreamExists, TooManyStreams
from servers.settings import ServerSettings
from servers.sources.mock import TokenSource
from transports import TRANSPORTS, TransportRegistry
from wire.messages import GenerationRequest

PRINCIPAL_KEY = "tokenwire.principal"  # in the ASGI scope: the caller's principal


class WebhookSending(Protocol):
    """The server's webhook sender (`servers.webhook.WebhookSender`), as its life sees it."""

    def open(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class ServerState:
    source: TokenSource
    settings: ServerSettings
    generations: Generations
    transports: TransportRegistry = TRANSPORTS  # what the app serves (`create_app`)
    principal: str | None = None  # the caller (a token's hash) when the server has tokens
    webhook_sender: WebhookSending | None = None  # the deliveries' pooled client (`servers.core`)


def principal_of(conn: HTTPConnection) -> str | None:
    """The caller's principal (a token's SHA-256, hex), as the access rules put it in the
    scope (`servers.access`); None when the server has no tokens."""
    principal = conn.scope.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, str) else None


def state_of(conn: HTTPConnection) -> ServerState:
    """The server's state, as seen by the connection's principal."""
    state: ServerState = conn.app.state.tokenwire
    principal = principal_of(conn)
    return state if principal is None else replace(state, principal=principal)


def start_generation(state: ServerState, request: GenerationRequest) -> Generation:
    kept = kept_conversation(state, request.previous_response_id)
    conversation = kept + request.context
    limit = state.settings.max_conversation_chars
    if len(conversation) > limit:
        raise RequestRefused(
            400,
            f"the conversation ({len(conversation)} characters) exceeds max_conversation_chars "
            f"({limit})",
        )
    try:
        gen = state.generations.create(request, owner=state.principal)
    except StreamExists:
        raise RequestRefused(409, f"stream {request.stream_id!r} already exists") from None
    except TooManyStreams:
        raise RequestRefused(
            503,
            f"the server runs max_active_streams ({state.settings.max_active_streams}) already",
            retry_after_s=1,
        ) from None
    gen.conversation = conversation
    return gen


def kept_conversation(state: ServerState, previous_response_id: str | None) -> str:
    """The conversation the server kept for the turn `previous_response_id` (a finished
    stream whose request asked to `store` it); "" when there is none to continue."""
    if previous_response_id is None:
        return ""
    previous = state.generations.get(previous_response_id, state.principal)
    if previous is None:
        raise RequestRefused(
            404, f"no response {previous_response_id!r} to continue (unknown, or forgotten)"
        )
    if not previous.done:
        raise RequestRefused(
            409, f"response {previous_response_id!r} is still streaming: continue it once done"
        )
    if not previous.request.store:
        raise RequestRefused(
            400, f"response {previous_response_id!r} was not stored: its request set no store"
        )
    return previous.conversation


def find_generation(state: ServerState, stream_id: str) -> Generation:
    gen = state.generations.get(stream_id, state.principal)
    if gen is None:
        raise RequestRefused(
            404, f"no stream {stream_id!r} (unknown, finished long ago, or dropped)"
        )
    return gen
