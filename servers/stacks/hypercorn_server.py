"""fastapi@hypercorn: the FastAPI app under hypercorn, which speaks HTTP/1.1 and HTTP/2
(cleartext h2c by prior knowledge or upgrade) on the same socket, and, given a certificate
(`--http3-cert`), HTTP/3 over QUIC (aioquic) on the UDP port of the same number."""

from __future__ import annotations

import socket

from errors import UsageError
from servers.stacks.options import ServeOptions


def quic_socket(host: str, port: int) -> socket.socket:
    """The UDP socket HTTP/3 answers on: the TCP port's number, or a one-line error."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"HTTP/3 answers on UDP port {port} of {host}, the TCP port's number, and that "
            f"port is taken ({exc.strerror}): serve on another port"
        ) from None
    return sock


def serve_fastapi(options: ServeOptions) -> None:
    import uvloop
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from servers.app import create_app
    from servers.run import freeze_startup_objects

    settings = options.settings
    config = Config()
    config.bind = [f"fd://{options.sock.fileno()}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    # request_timeout_s: hypercorn's idle timer runs from a connection's start, and from the
    # end of each answer, until the next request head is whole, so it bounds silent
    # connections and heads that never end (idle keep-alive connections close that soon
    # too); bodies the endpoints read answer 408 themselves. Not `read_timeout`: that bounds
    # every read of the connection, so it would cut a stream whose client sends nothing
    # (an SSE or WebSocket reader, a long poll) after request_timeout_s.
    config.keep_alive_timeout = settings.request_timeout_s
    config.read_timeout = None
    config.h11_max_incomplete_size = settings.max_head_bytes
    config.websocket_max_message_size = settings.max_body_bytes
    config.websocket_ping_interval = None  # keep-alive pings would be counted as transport bytes
    config.backlog = 4096
    if options.http3 is not None:
        # the TCP socket stays plain (`insecure_bind`); TLS is QUIC's alone
        config.insecure_bind, config.bind = config.bind, []
        config.certfile, config.keyfile = options.http3
        udp = quic_socket(options.host, options.port)  # held while the server runs
        config.quic_bind = [f"fd://{udp.fileno()}"]
    app = create_app(options.source, settings)
    freeze_startup_objects()
    uvloop.run(serve(app, config, mode="asgi"))  # type: ignore[arg-type]
