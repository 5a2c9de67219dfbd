"""The locust plugin: tokenwire as a locust load test. One User class per registered
transport (generated from `transports.TRANSPORTS`), each streaming through the project's
blocking driver (`clients.blocking_io`: the same exchange logic and wire code as the
benchmark's). `scenarios/locustfile.py` only imports what locust must find here.

    locust -f scenarios/locustfile.py --host http://127.0.0.1:8000 --headless
           -u 20 -r 20 -t 20s --stop-timeout 10 --csv results/my-load/locust
           --tokenwire-out results/my-load
    locust -f scenarios/locustfile.py --host http://127.0.0.1:8000 SSEUser WebSocketUser
    locust -f scenarios/locustfile.py --host http://127.0.0.1:8000 --tags sse poll
    python bench.py load --scenario scenarios/load-steady.toml   # server, locust, results

Users are per transport: `-u 20` gives each selected User class 20 users. Pass
`--stop-timeout` (seconds) so that the streams in flight at the end finish: without it
locust kills them, and they are left out of the results. Classes:
`<title>User` per transport (ShortPollUser, LongPollUser, SSEUser, ChunkedUser,
WebSocketUser, ...); tags: the transport's name
and `poll` or `push`. Each user streams in a closed loop (pausing `[load] think_time_s`,
and 0.1 s after a failed stream).

Every stream fires two locust request events, so they show in locust's UI, CSV and HTML:
`<transport> ttft` (time to first token) and `<transport> stream` (scheduled send to terminal
message; its response length is the number of tokens received). A stream that failed (a
transport or HTTP error, bad framing, lost or duplicated tokens, no terminal message) fails
its `stream` event with a one-line message. Locust rounds these times, so every stream's
full-resolution record is kept too: workers send theirs to the master with locust's
`report_to_master` / `worker_report` events, and at `test_stop` the master (or a single
local process) fetches the server's emit timelines and writes a results folder in the schema
of `bench.py run` (`--tokenwire-out`).

Distributed, a headless master fires `test_stop` before its workers have stopped (it tells
them to quit only afterwards, and does not wait for their users' last streams). So at its
`test_stop` the master sends the workers a `tokenwire_stop` message; each stops its users
gracefully (streams in flight finish, within `--stop-timeout`) and reports at once: that
report carries its last streams and `final`. The master waits for every worker's final
report, then writes.

Options: `--tokenwire-scenario FILE` (framing, polling, timeouts and the `[load]` shape:
steady, step or spike; `-u`, `-r` and `-t` override its users, spawn rate and run time),
`--tokenwire-out DIR`, `--tokenwire-server-pid PID` (to measure the server's CPU; `bench.py
load` passes it). A server that needs a bearer token gets it from `TOKENWIRE_SERVER_TOKEN`
(`harness.measure.run.shards.client_settings`, and the timeline fetch at the end).
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import secrets
import socket
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import gevent
import psutil
from locust import LoadTestShape, User, events, tag, task
from locust.env import Environment
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from clients.blocking_io import BlockingClient, BlockingStreamClient
from clients.interface import StreamError, StreamResult
from errors import ErrorKind, ScenarioError
from harness.analyse.results import default_run_dir
from harness.load.names import user_class_name, user_tags, with_users
from harness.load.records import (
    Batch,
    LoadCollection,
    LoadWindow,
    StreamVerdict,
    pack,
    save_load_run,
    verdict,
)
from harness.load.shapes import users_at
from harness.measure.process_tree import tree_cpu_seconds, tree_rss_bytes
from harness.measure.run.jobs import load_prompts
from harness.measure.run.shards import client_settings
from harness.measure.scenario import Scenario, load_scenario, validated
from transports import TRANSPORTS, Transport
from wire.messages import GenerationRequest

log = logging.getLogger("tokenwire")
logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request in locust's log
STOP_MESSAGE = "tokenwire_stop"
REPORT_SLACK_S = 2 * WORKER_REPORT_INTERVAL + 5  # beyond the stop timeout: the last reports
# Locust rewrites its stats CSV once a second and not again at exit: waiting this long after
# the last stream lets the CSV count every stream, as results.json does.
CSV_CATCH_UP_S = CSV_STATS_INTERVAL_SEC + 0.5
FAILURE_PAUSE_S = 0.1  # after a failed stream: a refused connection must not spin a user


@dataclass(frozen=True, slots=True)
class Overrides:
    """`-u`, `-r` and `-t` as given on the command line (None: not given)."""

    users: int | None
    spawn_rate: float | None
    run_time_s: float | None


@dataclass(frozen=True, slots=True)
class LoadConfig:
    scenario: Scenario
    out_dir: Path
    server_pid: int
    prompts: tuple[str, ...]


def read_config(options: Any, overrides: Overrides) -> LoadConfig:
    """The test's settings from locust's parsed options; raises ScenarioError."""
    path = options.tokenwire_scenario
    scenario = load_scenario(Path(path)) if path else Scenario(name="locust")
    given = {
        "users": overrides.users,
        "spawn_rate": overrides.spawn_rate,
        "run_time_s": overrides.run_time_s,
    }
    changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    load = replace(scenario.load, **changes)
    scenario = validated(with_users(replace(scenario, load=load)))
    return LoadConfig(
        scenario=scenario,
        out_dir=Path(options.tokenwire_out) if options.tokenwire_out else default_run_dir(scenario),
        server_pid=int(options.tokenwire_server_pid or 0),
        prompts=tuple(load_prompts(scenario)),
    )


def process_cpu_s() -> float:
    """This locust process's own CPU seconds (the clients'); the server's are its whole
    process tree's (`tree_cpu_seconds`)."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


class LoadSession:
    """This locust process's part of the test: settings, request naming, the streams its
    users ran, and, on the master or a local runner, the merge and the results folder."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        options = environment.parsed_options
        self.overrides = Overrides(
            users=getattr(options, "num_users", None),
            spawn_rate=getattr(options, "spawn_rate", None),
            run_time_s=getattr(options, "run_time", None),
        )
        self.config: LoadConfig | None = None
        self.config_error: str | None = None
        self.run_tag = ""
        self.sequence: dict[str, int] = {}
        self.pending: list[list[Any]] = []
        self.final = False
        self.cpu0 = 0.0
        self.server_cpu0: float | None = None
        self.window_start_ns = 0
        self.started = dt.datetime.now(dt.UTC)
        self.collection = LoadCollection()

    # --- settings -------------------------------------------------------------------------

    def configure(self) -> LoadConfig | None:
        try:
            self.config = read_config(self.environment.parsed_options, self.overrides)
            self.config_error = None
        except (ScenarioError, OSError) as exc:
            self.config, self.config_error = None, f"tokenwire: {exc}"
        return self.config

    def require_config(self) -> LoadConfig:
        if self.config is None:
            raise RuntimeError(self.config_error or "tokenwire: the test has not started")
        return self.config

    @property
    def is_worker(self) -> bool:
        return isinstance(self.environment.runner, WorkerRunner)

    @property
    def is_master(self) -> bool:
        return isinstance(self.environment.runner, MasterRunner)

    @property
    def worker_index(self) -> int:
        return max(0, getattr(self.environment.runner, "worker_index", 0))

    def transports(self) -> list[str]:
        return [
            cls.transport
            for cls in self.environment.user_classes
            if issubclass(cls, TokenwireUser) and cls.transport
        ]

    # --- one stream -----------------------------------------------------------------------

    def next_request(self, transport: str) -> GenerationRequest:
        """Stream ids name the process (`w<worker index>`), so merged records show which
        worker ran each stream; seeds count per transport, as in `bench.py run`."""
        config = self.require_config()
        k = self.sequence.get(transport, 0)
        self.sequence[transport] = k + 1
        return GenerationRequest(
            seed=k,
            prompt=config.prompts[k % len(config.prompts)],
            max_tokens=config.scenario.source.max_tokens,
            stream_id=f"{self.run_tag}-{transport}-w{self.worker_index}-{k}",
        )

    def record(self, seed: int, result: StreamResult) -> None:
        self.pending.append(pack(seed, result))

    def take_batch(self) -> Batch:
        batch = Batch(self.worker_index, socket.gethostname(), self.pending, final=self.final)
        if self.final:
            batch.client_cpu_s = process_cpu_s() - self.cpu0
        self.pending = []
        return batch

    # --- locust events --------------------------------------------------------------------

    def on_test_start(self, environment: Environment, **_kwargs: Any) -> None:
        config = self.configure()  # workers get the master's options only now
        if config is None:
            log.error(self.config_error)
            return
        self.run_tag = f"lt{secrets.token_hex(3)}"
        self.sequence, self.pending, self.final = {}, [], False
        self.cpu0 = process_cpu_s()
        self.collection = LoadCollection()
        self.started = dt.datetime.now(dt.UTC)
        self.window_start_ns = time.perf_counter_ns()
        self.server_cpu0 = tree_cpu_seconds(config.server_pid) if config.server_pid else None
        # Locust's Runner.stop() calls inspect.stack(), whose first call scans every module
        # and reads source files: ~100 ms in which no greenlet runs, so the streams still in
        # flight at the end would show it as added delay. Warm those caches now.
        inspect.stack()

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        data["tokenwire"] = self.take_batch().to_wire()

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        if "tokenwire" in data:
            self.collection.add(Batch.from_wire(data["tokenwire"]))

    def on_stop_message(self, environment: Environment, **_kwargs: Any) -> None:
        """A worker, told by the master: stop the users gracefully (fires `test_stop` here),
        then report at once rather than at the next 3-second report: the same
        `report_to_master` path, the way locust itself flushes a worker's last stats."""
        assert environment.runner is not None  # a runner's message
        environment.runner.stop()
        flush = getattr(environment.runner, "_send_stats", None)
        if flush is not None:
            flush()

    def on_test_stop(self, environment: Environment, **_kwargs: Any) -> None:
        self.final = True  # a worker's next report carries its last streams and its CPU
        if self.is_worker or self.config is None:
            return
        if self.is_master:
            assert environment.runner is not None  # the master's runner
            environment.runner.send_message(STOP_MESSAGE)
            self.wait_for_workers(self.config.scenario.load.stop_timeout_s + REPORT_SLACK_S)
        else:
            self.collection.add(self.take_batch())
        last_stats = time.monotonic()  # every stream's locust events are in by now
        self.write()
        gevent.sleep(max(0.0, CSV_CATCH_UP_S - (time.monotonic() - last_stats)))

    def wait_for_workers(self, timeout_s: float) -> None:
        runner = self.environment.runner
        assert isinstance(runner, MasterRunner)
        deadline = time.monotonic() + timeout_s
        while len(self.collection.finished_workers) < runner.worker_count:
            if time.monotonic() > deadline:
                log.error(
                    "tokenwire: only %d of %d workers sent their last streams within %g s",
                    len(self.collection.finished_workers),
                    runner.worker_count,
                    timeout_s,
                )
                return
            gevent.sleep(0.1)

    def window_end_ns(self) -> int:
        """The last stream's end on this host's clock (workers may stop after the master)."""
        here = socket.gethostname()
        ends = [
            s.result.end_ns or (s.result.recv_ns[-1] if s.result.recv_ns else 0)
            for s in self.collection.streams
            if s.host == here
        ]
        return max([*ends, self.window_start_ns]) if ends else time.perf_counter_ns()

    def write(self) -> None:
        config = self.require_config()
        server_cpu = rss = None
        if config.server_pid and self.server_cpu0 is not None:
            server_cpu = tree_cpu_seconds(config.server_pid) - self.server_cpu0
            rss = tree_rss_bytes(config.server_pid)
        window = LoadWindow(
            start_ns=self.window_start_ns,
            end_ns=self.window_end_ns(),
            started=self.started,
            finished=dt.datetime.now(dt.UTC),
            server_cpu_s=server_cpu,
            server_rss_bytes=rss,
        )
        runner = self.environment.runner
        metadata = {
            "tool": "locust",
            "host": self.environment.host,
            "workers": runner.worker_count if isinstance(runner, MasterRunner) else 0,
            "master_host": socket.gethostname(),
        }
        try:
            save_load_run(
                config.out_dir,
                config.scenario,
                self.transports(),
                self.collection,
                window,
                str(self.environment.host),
                sys.argv[1:],
                metadata,
            )
        except Exception as exc:  # the test itself is over: say why the results are missing
            log.error("tokenwire: could not write results to %s: %s", config.out_dir, exc)
            self.environment.process_exit_code = 1
            return
        log.info(
            "tokenwire: %d streams (per worker: %s) written to %s",
            len(self.collection.streams),
            self.collection.streams_per_worker(),
            config.out_dir,
        )


class TokenwireUser(User):
    """Streams in a closed loop through one transport's blocking client."""

    abstract = True
    transport: ClassVar[str] = ""
    session: ClassVar[LoadSession | None] = None  # set by the `init` listener below

    def wait_time(self) -> float:
        return self.current_session().require_config().scenario.load.think_time_s

    def current_session(self) -> LoadSession:
        if TokenwireUser.session is None:
            raise RuntimeError("tokenwire: the locust init event has not run")
        return TokenwireUser.session

    def on_start(self) -> None:
        if not self.host:
            raise RuntimeError("tokenwire: pass --host http://127.0.0.1:PORT (the server)")
        config = self.current_session().require_config()
        settings = client_settings(config.scenario, self.host, max_connections=1)
        logic = TRANSPORTS.get(self.transport).exchange
        self.client: BlockingStreamClient = BlockingClient(self.transport, logic, settings)

    def on_stop(self) -> None:
        self.client.close()

    def stream_once(self) -> None:
        session = self.current_session()
        timeout_s = session.require_config().scenario.stream_timeout_s
        request = session.next_request(self.transport)
        scheduled = time.perf_counter_ns()
        try:
            with gevent.Timeout(timeout_s):
                result = self.client.stream(request, scheduled)
        except gevent.Timeout:
            result = StreamResult(self.transport, request.stream_id or "", scheduled)
            late = f"the stream did not finish within {timeout_s:g} s"
            result.error = StreamError(ErrorKind.TIMEOUT, late)
        session.record(request.seed, result)
        judged = verdict(result, time.perf_counter_ns())
        self.report(judged)
        if judged.failure is not None:
            gevent.sleep(FAILURE_PAUSE_S)

    def report(self, judged: StreamVerdict) -> None:
        fire = self.environment.events.request.fire
        if judged.ttft_ms is not None:
            fire(
                request_type=self.transport,
                name=f"{self.transport} ttft",
                response_time=judged.ttft_ms,
                response_length=0,
                exception=None,
                context={},
            )
        fire(
            request_type=self.transport,
            name=f"{self.transport} stream",
            response_time=judged.stream_ms,
            response_length=judged.tokens,
            exception=judged.failure,
            context={},
        )


def generated_user(transport: Transport) -> type[TokenwireUser]:
    """The User class of one registered transport: `<title>User`, tagged with its name and
    kind, whose one task streams once through that transport."""

    def stream(user: TokenwireUser) -> None:
        user.stream_once()

    stream.__name__ = transport.name
    task_function = tag(*user_tags(transport))(task(stream))
    name = user_class_name(transport)
    body = {"transport": transport.name, "tasks": [task_function], "__module__": __name__}
    return type(name, (TokenwireUser,), body)


# not for a transport over QUIC: the blocking driver has no QUIC client
USER_CLASSES: dict[str, type[TokenwireUser]] = {
    t.name: generated_user(t) for t in TRANSPORTS if not t.quic
}


class ScenarioShape(LoadTestShape):
    """The scenario's `[load]` shape (steady by default), per transport: the total is the
    per-transport count times the number of selected User classes."""

    use_common_options = True  # -u, -r and -t override the scenario's users, rate and time

    def tick(self) -> tuple[int, float] | None:
        session = TokenwireUser.session
        if session is None or session.config is None:
            return None
        load = session.config.scenario.load
        users = users_at(load, self.get_run_time())
        if users is None:
            return None
        classes = max(1, len(session.transports()))
        return users * classes, load.spawn_rate * classes


def selected_by_tags(user_class: type[User], options: Any) -> bool:
    """Locust filters tasks by tag but still spawns the users left without tasks; here a
    User class whose task the tags filter out is not selected at all."""
    tags = set(getattr(options, "tags", None) or ())
    excluded = set(getattr(options, "exclude_tags", None) or ())
    task_tags: set[str] = set()
    for user_task in user_class.tasks:
        task_tags |= set(getattr(user_task, "locust_tag_set", ()))
    wanted = not tags or bool(task_tags & tags)
    return bool(user_class.tasks) and wanted and not task_tags & excluded


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any, **_kwargs: Any) -> None:
    group = parser.add_argument_group("tokenwire")
    group.add_argument(
        "--tokenwire-scenario",
        default="",
        help="scenario TOML: framing, polling, timeouts and the [load] shape",
    )
    group.add_argument(
        "--tokenwire-out",
        default="",
        help="results folder (default: results/<UTC time>-<scenario name>/)",
    )
    group.add_argument(
        "--tokenwire-server-pid",
        type=int,
        default=0,
        help="PID of the server under test, to measure its CPU (same host only)",
    )


@events.init.add_listener
def on_init(environment: Environment, **_kwargs: Any) -> None:
    session = LoadSession(environment)
    TokenwireUser.session = session
    options = environment.parsed_options
    if not isinstance(environment.runner, WorkerRunner):
        environment.user_classes[:] = [
            cls for cls in environment.user_classes if selected_by_tags(cls, options)
        ]
        if not environment.user_classes:
            log.error("tokenwire: the --tags/--exclude-tags select no User class")
            raise SystemExit(2)
        if session.configure() is None:
            log.error(session.config_error)
            raise SystemExit(2)
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(STOP_MESSAGE, session.on_stop_message, concurrent=True)
    environment.events.test_start.add_listener(session.on_test_start)
    environment.events.test_stop.add_listener(session.on_test_stop)
    environment.events.report_to_master.add_listener(session.on_report_to_master)
    environment.events.worker_report.add_listener(session.on_worker_report)
