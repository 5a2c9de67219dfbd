"""fastapi@granian and asgi@granian: the FastAPI app and the bare ASGI app under granian, a
Rust HTTP server that runs the Python app in worker processes of its own.

granian binds its listening socket itself (it takes an address and a port, not a
descriptor), so the driver's socket is closed here and its port handed to granian; on
loopback, nothing else takes the port in between. Its worker rebuilds the source and the
settings from servers.run's arguments (`ARGS_ENV`), and builds the app through a factory.
"""

from __future__ import annotations

import os

from servers.run import freeze_startup_objects
from servers.stacks.options import ARGS_ENV, ServeOptions, args_env, rebuilt_from_env

MODULE = __name__


def fastapi_factory() -> object:
    from servers.app import create_app

    source, settings = rebuilt_from_env()
    app = create_app(source, settings)
    freeze_startup_objects()
    return app


def asgi_factory() -> object:
    from servers.stacks.asgi_app import create_app

    source, settings = rebuilt_from_env()
    app = create_app(source, settings)
    freeze_startup_objects()
    return app


def _serve(options: ServeOptions, factory: str) -> None:
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    host, port = options.host, options.port
    options.sock.close()  # granian binds the port itself
    os.environ[ARGS_ENV] = args_env(options.argv)
    settings = options.settings
    Server(
        f"{MODULE}:{factory}",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=1,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=True,
        backlog=4096,
        http1_settings=HTTP1Settings(
            header_read_timeout=round(settings.request_timeout_s * 1000),
            max_buffer_size=max(settings.max_head_bytes, 8192),
        ),
        log_level=LogLevels.warning,
        log_access=False,
    ).serve()


def serve_fastapi(options: ServeOptions) -> None:
    _serve(options, "fastapi_factory")


def serve_asgi(options: ServeOptions) -> None:
    _serve(options, "asgi_factory")
