"""The blocking client's callback receiver (locust, or plain threads): an accepting thread
and a thread per connection (greenlets under gevent's monkey patching), a mailbox per
stream. What it speaks and answers: `callbacks_http.py`."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from dataclasses import dataclass, field

from clients import callbacks_http as shared
from clients.wirebytes import AcceptedCounters


@dataclass(eq=False)
class Answered:
    """A request's answer, from the stream's thread to the connection's."""

    done: threading.Event = field(default_factory=threading.Event)
    data: bytes = b""

    def set(self, data: bytes) -> None:
        if not self.done.is_set():
            self.data = data
            self.done.set()


@dataclass(eq=False)
class BlockingMailbox:
    receiver: BlockingReceiver
    key: str
    url: str
    inbox: queue.Queue[tuple[shared.Inbound, Answered]] = field(default_factory=queue.Queue)
    current: tuple[shared.Inbound, Answered] | None = None
    closed: bool = False

    def deliver(self, inbound: shared.Inbound) -> bytes:
        answered = Answered()
        self.inbox.put((inbound, answered))
        if self.closed:  # closed (by the stream's thread) since the receiver looked it up
            self._answer_waiting()
        if answered.done.wait(shared.ANSWER_WAIT_S):
            return answered.data
        return shared.unanswered()

    def next(self, timeout_s: float) -> shared.Inbound | None:
        try:
            self.current = self.inbox.get(timeout=timeout_s)
        except queue.Empty:
            return None
        return self.current[0]

    def answer(self, status: int, body: bytes) -> int:
        current, self.current = self.current, None
        answered, data, head = shared.answer_taken(current, status, body)
        answered.set(data)
        return head

    def close(self) -> None:
        with self.receiver.lock:
            self.receiver.mailboxes.pop(self.key, None)
        self.closed = True
        self._answer_waiting()

    def _answer_waiting(self) -> None:
        """Requests still waiting (and later ones) get 410 Gone."""
        waiting = [self.current] if self.current is not None else []
        self.current = None
        with contextlib.suppress(queue.Empty):
            for _ in range(self.inbox.qsize() + 1):
                waiting.append(self.inbox.get_nowait())
        for inbound, answered in waiting:
            answered.set(shared.gone(inbound.keep_alive))


class BlockingReceiver:
    """The blocking client's callback receiver: an accepting thread and one thread per
    connection (greenlets under gevent), started when made."""

    def __init__(self) -> None:
        self.mailboxes: dict[str, BlockingMailbox] = {}
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.closed = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.bind((shared.RECEIVER_HOST, 0))
            self.sock.listen(1024)
        except OSError:
            self.sock.close()
            raise
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept_all, name="tokenwire-callbacks", daemon=True).start()

    def open(self) -> BlockingMailbox:
        key, url = shared.new_address(self.port)
        mailbox = BlockingMailbox(self, key, url)
        with self.lock:
            self.mailboxes[key] = mailbox
        return mailbox

    def _accept_all(self) -> None:
        for _ in range(shared.MAX_CONNECTIONS):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with self.lock:
                if self.closed:
                    conn.close()
                    return
                self.connections.add(conn)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        counters = AcceptedCounters(conn)
        parser = shared.RequestParser()
        try:
            for _ in range(shared.MAX_READS):
                data = conn.recv(shared.READ_SIZE)
                now_ns, wall_s = time.perf_counter_ns(), time.time()
                if not data:
                    return
                parser.feed(data)
                if not self._answer_all(parser, counters, conn, now_ns, wall_s):
                    return
        except OSError:
            pass  # the peer went away, or the receiver closed
        finally:
            with self.lock:
                self.connections.discard(conn)
            conn.close()

    def _answer_all(
        self,
        parser: shared.RequestParser,
        counters: AcceptedCounters,
        conn: socket.socket,
        now_ns: int,
        wall_s: float,
    ) -> bool:
        for answer, mailbox, inbound, keep_alive in shared.answer_steps(
            parser, counters.charge, now_ns, wall_s, self._mailbox
        ):
            if answer is None:
                assert mailbox is not None and inbound is not None
                answer = mailbox.deliver(inbound)
            conn.sendall(answer)
            if not keep_alive:
                return False
        return True

    def _mailbox(self, key: str) -> BlockingMailbox | None:
        with self.lock:
            return self.mailboxes.get(key)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            mailboxes = list(self.mailboxes.values())
            connections = list(self.connections)
        for mailbox in mailboxes:
            mailbox.close()
        for sock in (self.sock, *connections):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept or recv
            sock.close()
