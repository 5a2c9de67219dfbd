"""fastapi@hypercorn: the FastAPI app under hypercorn, which speaks HTTP/1.1 and HTTP/2
(cleartext h2c by prior knowledge or upgrade) on the same socket."""

from __future__ import annotations

from servers.stacks.options import ServeOptions


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
    config.keep_alive_timeout = 30  # as uvicorn's timeout_keep_alive
    config.read_timeout = round(settings.request_timeout_s)
    config.h11_max_incomplete_size = settings.max_head_bytes
    config.websocket_max_message_size = settings.max_body_bytes
    config.websocket_ping_interval = None  # keep-alive pings would be counted as transport bytes
    config.backlog = 4096
    app = create_app(options.source, settings)
    freeze_startup_objects()
    uvloop.run(serve(app, config, mode="asgi"))  # type: ignore[arg-type]
