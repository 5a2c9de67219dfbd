"""What short and long polling clients share: create the stream, then poll by offset."""

from __future__ import annotations

import time

from clients.base import ClientSettings, StreamResult
from clients.errors import ProtocolViolation, StreamIncomplete, TransportError, UpstreamFailed
from clients.http import (
    check_status,
    exchange_head_bytes,
    make_http_client,
    mapped_errors,
    socket_of,
)
from clients.wirebytes import ByteMeter
from wire.messages import EndMsg, GenerationRequest, Message, loads
from wire.poll import decode_batch, decode_created


class PollingClient:
    """Polls `GET /v1/streams/{id}?offset=k`. Subclasses decide the pacing (`before_poll`)
    and the extra query parameters (`poll_params`)."""

    transport = "polling"

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.http = make_http_client(settings)
        self.meter = ByteMeter()

    def poll_params(self) -> dict[str, str]:
        return {}

    async def before_poll(self, poll_number: int, started_ns: int) -> None:
        """Wait until poll `poll_number` (0-based) is due."""

    async def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        result = StreamResult(self.transport, request.stream_id or "", scheduled_ns)
        try:
            async with mapped_errors():
                await self._run(request, result)
        except TransportError as exc:
            result.fail(exc)
        return result

    async def _send(self, result: StreamResult, method: str, url: str, **kwargs: object) -> object:
        response = await self.http.request(method, url, **kwargs)  # type: ignore[arg-type]
        result.requests += 1
        result.header_bytes += exchange_head_bytes(response)
        result.add_bytes(self.meter.charge(socket_of(response)))
        await check_status(response, 201 if method == "POST" else 200)
        return loads(response.content)

    async def _run(self, request: GenerationRequest, result: StreamResult) -> None:
        stream_id = decode_created(
            await self._send(result, "POST", "/v1/streams", json=request.to_json())
        )
        result.stream_id = stream_id
        started = time.perf_counter_ns()
        offset = 0
        for poll_number in range(1 << 62):
            await self.before_poll(poll_number, started)
            body = await self._send(
                result,
                "GET",
                f"/v1/streams/{stream_id}",
                params={"offset": offset, **self.poll_params()},
            )
            now = time.perf_counter_ns()
            batch = decode_batch(body)
            if batch.error is not None:
                raise UpstreamFailed(batch.error)
            if batch.tokens and batch.tokens[0].i != offset:
                raise ProtocolViolation(f"asked for offset {offset}, got index {batch.tokens[0].i}")
            messages: list[Message] = [*batch.tokens]
            if batch.done:
                messages.append(EndMsg(tokens=batch.next))
            elif not batch.tokens:
                result.empty_polls += 1
            result.take(messages, now)
            offset = batch.next
            if batch.done:
                return
        raise StreamIncomplete("polling never reached the end of the stream")

    async def aclose(self) -> None:
        await self.http.aclose()
