"""Run by tests/clients/test_sync_clients.py in a subprocess, never imported by pytest: the
blocking clients under gevent's monkey patching, as locust runs them.

    python tests/clients/sync_under_gevent.py BASE_URL SEED STREAMS_PER_TRANSPORT

Starts every stream of every transport at once, each in its own greenlet, and prints one
JSON list of packed `StreamResult`s (`harness.load.records.pack`) on stdout.
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import orjson  # noqa: E402

from clients.blocking_io import BlockingClient  # noqa: E402
from clients.interface import ClientSettings, StreamResult  # noqa: E402
from harness.load.records import pack  # noqa: E402
from transports import TRANSPORTS  # noqa: E402
from wire.messages import GenerationRequest  # noqa: E402


def one_stream(base_url: str, transport: str, seed: int, k: int) -> StreamResult:
    settings = ClientSettings(
        base_url=base_url, knobs=(("poll_interval_ms", 20.0),), stream_timeout_s=30
    )
    client = BlockingClient(transport, TRANSPORTS.get(transport).exchange, settings)
    try:
        request = GenerationRequest(seed=seed, stream_id=f"gevent-{transport}-{k}")
        return client.stream(request, time.perf_counter_ns())
    finally:
        client.close()


def main(base_url: str, seed: int, per_transport: int) -> None:
    jobs = [
        gevent.spawn(one_stream, base_url, transport, seed, k)
        for transport in TRANSPORTS.names()
        if not TRANSPORTS.get(transport).quic  # the blocking driver has no QUIC client
        for k in range(per_transport)
    ]
    gevent.joinall(jobs, timeout=60, raise_error=True)
    packed = []
    for job in jobs:
        assert job.value is not None, "a stream did not end within the minute"
        packed.append(pack(seed, job.value))
    sys.stdout.write(orjson.dumps(packed).decode())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
