"""The asyncio client's callback receiver (the benchmark's driver): asyncio streams, a task
per connection, a mailbox per stream. What it speaks and answers: `callbacks_http.py`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from clients import callbacks_http as shared
from clients.wirebytes import AcceptedCounters


@dataclass(eq=False)
class AsyncMailbox:
    receiver: AsyncReceiver
    key: str
    url: str
    inbox: asyncio.Queue[tuple[shared.Inbound, asyncio.Future[bytes]]] = field(
        default_factory=asyncio.Queue
    )
    current: tuple[shared.Inbound, asyncio.Future[bytes]] | None = None

    async def deliver(self, inbound: shared.Inbound) -> bytes:
        """The connection's side: hand the request over, wait for the stream's answer."""
        answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.inbox.put_nowait((inbound, answered))
        try:
            async with asyncio.timeout(shared.ANSWER_WAIT_S):
                return await answered
        except TimeoutError:
            return shared.unanswered()

    async def next(self, timeout_s: float) -> shared.Inbound | None:
        try:
            async with asyncio.timeout(timeout_s):
                self.current = await self.inbox.get()
        except TimeoutError:
            return None
        return self.current[0]

    def answer(self, status: int, body: bytes) -> int:
        """Answer the request taken last; the size of the answer's head."""
        current, self.current = self.current, None
        answered, data, head = shared.answer_taken(current, status, body)
        if not answered.done():
            answered.set_result(data)
        return head

    def close(self) -> None:
        """The stream ended: requests still waiting (and later ones) get 410 Gone."""
        self.receiver.mailboxes.pop(self.key, None)
        waiting = [self.current] if self.current is not None else []
        self.current = None
        while not self.inbox.empty():
            waiting.append(self.inbox.get_nowait())
        for inbound, answered in waiting:
            if not answered.done():
                answered.set_result(shared.gone(inbound.keep_alive))


class AsyncReceiver:
    """The asyncio client's callback receiver (started on first use)."""

    def __init__(self) -> None:
        self.mailboxes: dict[str, AsyncMailbox] = {}
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()
        self.serving: set[asyncio.Task[object]] = set()  # one per connection
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        async with self._starting:
            if self.server is None:
                self.server = await asyncio.start_server(
                    self._serve, shared.RECEIVER_HOST, 0, backlog=1024, limit=shared.READ_SIZE
                )
                self.port = self.server.sockets[0].getsockname()[1]

    def open(self) -> AsyncMailbox:
        key, url = shared.new_address(self.port)
        mailbox = AsyncMailbox(self, key, url)
        self.mailboxes[key] = mailbox
        return mailbox

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.serving.add(task)
        self.writers.add(writer)
        counters = AcceptedCounters(writer.get_extra_info("socket"))
        parser = shared.RequestParser()
        try:
            for _ in range(shared.MAX_READS):
                data = await reader.read(shared.READ_SIZE)
                now_ns, wall_s = time.perf_counter_ns(), time.time()
                if not data:
                    return
                parser.feed(data)
                if not await self._answer_all(parser, counters, writer, now_ns, wall_s):
                    return
        except (ConnectionError, OSError):
            pass  # the peer went away
        finally:
            self.writers.discard(writer)
            writer.close()
            self.serving.discard(task)

    async def _answer_all(
        self,
        parser: shared.RequestParser,
        counters: AcceptedCounters,
        writer: asyncio.StreamWriter,
        now_ns: int,
        wall_s: float,
    ) -> bool:
        """Answer every complete request; False once the connection is to close."""
        steps = shared.answer_steps(parser, counters.charge, now_ns, wall_s, self.mailboxes.get)
        for answer, mailbox, inbound, keep_alive in steps:
            if answer is None:
                assert mailbox is not None and inbound is not None
                answer = await mailbox.deliver(inbound)
            writer.write(answer)
            await writer.drain()
            if not keep_alive:
                return False
        return True

    async def aclose(self) -> None:
        for mailbox in list(self.mailboxes.values()):
            mailbox.close()
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.close()  # its connection's reader sees the end, its task returns
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                if self.serving:
                    await asyncio.gather(*self.serving, return_exceptions=True)
                if self.server is not None:
                    await self.server.wait_closed()
