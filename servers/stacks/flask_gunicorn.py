"""flask@gunicorn: the Flask app (`servers.stacks.flask_app`) under gunicorn's `gthread`
worker, as Flask apps that stream are served: each worker process runs a pool of
`threads` threads, each request (an open stream, a held long poll) holds one for its whole
life, and a connection that finds them all busy waits in the worker's queue for one.

gunicorn serves on the socket the driver bound (`fd://`), and stops on SIGTERM: the master
stops its workers, which finish their requests for at most `graceful_timeout`, then leave
the core's `running` (every generation still running is cancelled).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from servers.core import make_state
from servers.stacks.flask_app import CLOSE_AFTER, create_app
from servers.stacks.loop_thread import CoreLoop
from servers.stacks.options import ServeOptions

MAX_REQUEST_LINE = 8190  # gunicorn's ceiling for limit_request_line
GRACEFUL_TIMEOUT_S = 3  # under the driver's 5 s between SIGTERM and SIGKILL
serving = threading.local()  # the gunicorn request each thread of a worker serves


def pre_request(worker: Any, req: Any) -> None:
    serving.request = req  # the hook runs in the thread that then runs the app


class QuietWriteTimeouts(logging.Filter):
    """gunicorn logs a traceback for a client dropped because it stopped reading (its write
    timed out after write_timeout_s); the asgi stacks drop such a client silently."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], TimeoutError))


def closing(app: WSGIApplication) -> WSGIApplication:
    """The app, told how to end a connection after its answer (`CLOSE_AFTER`): gunicorn
    drops an app's `Connection` header; its request's own flag makes it answer
    `Connection: close` and close."""

    def closable(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ[CLOSE_AFTER] = serving.request.force_close
        return app(environ, start_response)

    return closable


def gunicorn_config(options: ServeOptions, fd: int) -> dict[str, Any]:
    head = options.settings.max_head_bytes
    return {
        "bind": [f"fd://{fd}"],  # gunicorn takes the fd over (and closes it once it has dup'd it)
        "worker_class": "gthread",
        "workers": options.workers,
        "threads": options.threads,
        "keepalive": 30,  # as the uvicorn stacks' timeout_keep_alive
        # the arbiter's heartbeat: gthread's main thread notifies it every second whatever
        # its request threads do, so a long stream is never taken for a hung worker
        "timeout": 30,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "limit_request_line": min(head, MAX_REQUEST_LINE),
        "limit_request_field_size": head,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "control_socket_disable": True,  # gunicorn 27's control socket: one per user path
    }


class FlaskGunicorn(BaseApplication):
    """gunicorn, programmatically: the config from `ServeOptions`, the app built in each
    worker (after the fork) with its own core loop."""

    def __init__(self, options: ServeOptions, fd: int) -> None:
        self.options = options
        self.fd = fd
        self.core: CoreLoop | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_config(self.options, self.fd).items():
            self.cfg.set(key, value)
        self.cfg.set("worker_exit", self.worker_exit)
        self.cfg.set("pre_request", pre_request)

    def load(self) -> WSGIApplication:
        """In the worker: the state, its core loop, and the app over them."""
        from servers.run import freeze_startup_objects

        logging.getLogger("gunicorn.error").addFilter(QuietWriteTimeouts())
        state = make_state(self.options.source, self.options.settings)
        self.core = CoreLoop(state)
        self.core.start()
        app = create_app(state, self.core)
        freeze_startup_objects()
        return closing(app)

    def worker_exit(self, server: Any, worker: Any) -> None:
        if self.core is not None:
            self.core.stop()


def serve(options: ServeOptions) -> None:
    """flask@gunicorn (module docstring)."""
    fd = os.dup(options.sock.fileno())
    options.sock.close()  # gunicorn's listener is the duplicate
    FlaskGunicorn(options, fd).run()
