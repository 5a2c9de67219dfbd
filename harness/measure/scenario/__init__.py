"""Scenarios: a declarative description of one benchmark run (TOML file + command-line flags).

```toml
name = "default"
description = "..."
transports = "all"            # or ["sse", "websocket"]; all: those that can run here (the
                              # browser: no webhook; a path without QUIC, http = 3 or a
                              # load test: no webtransport)
requests = 50                 # measured streams per transport
concurrency = 8               # streams in flight at once (with a rate: at most)
rate = 0                      # open loop: requests per second per transport, arriving on a
                              # schedule whatever the server does; a stream that finds all
                              # `concurrency` slots busy waits, and the wait counts in its
                              # TTFT and E2E. 0: closed loop (a stream starts when one ends)
arrivals = "poisson"          # with a rate: poisson (random gaps, seeded by `seed`) | constant
warmup = 2                    # unmeasured streams per transport first
seed = 1                      # the mock's text and timing; request k uses seed k
framing = "json"              # json | openai | vercel-ui | vercel-data | langchain | raw:
                              # json and openai go over every transport (polling keeps its
                              # own envelope); vercel-ui over sse, vercel-data over chunked,
                              # langchain over sse, chunked, websocket and webtransport, raw
                              # over sse and chunked (wire/framing.py; any other pair is
                              # refused)
poll_interval_ms = 100        # short polling
long_poll_wait_s = 30         # long polling
batch_ms = 0                  # webhook: the server batches tokens this long per POST
                              # (0: one POST per token; at most 60000)
stream_timeout_s = 120        # one stream must finish within this
client = "python"             # python | browser (Chromium pages: harness.measure.browser)
streams_per_page = 6          # browser: streams one page runs at once (6: Chromium's HTTP/1.1
                              # connections per host; 7 shows the seventh waiting)
ramp_s = 0                    # closed loop: start the concurrency workers evenly over this
                              # many seconds, not all at once (0); streams of equal length
                              # otherwise stay in lockstep, requested in waves
repeat = 1                    # run each transport's phase this many times, in rounds (A B C,
                              # A B C, ...), so drift hits every transport alike; intervals
                              # then resample rounds too, and the report shows each round
raw_client = false            # after each transport, the same streams through a minimal raw
                              # socket client that only counts tokens: the floor for the
                              # client's CPU per token (harness.measure.raw_client; sse,
                              # chunked and websocket, json framing, python client)
server_processes = "auto"     # servers under test: N processes on N loopback ports; each
                              # client shard sticks to one (shard i -> server i % N), so
                              # every request of a stream goes to the server that has it
client_processes = "auto"     # processes the driver's streams run in: job k in process
                              # k % M, concurrency split evenly, results merged as if one
                              # process had run them. Both: 1 to 64, or "auto" (or 0):
                              # max(1, c // 2) on c cores (os.cpu_count(); 2 cores: 1 and 1).
                              # More than 1 server needs path = "loopback", more than 1 of
                              # either needs client = "python" (auto is then 1);
                              # `bench.py load` runs one server (locust: --workers)
server_cpus = ""              # pin the server processes to these CPUs ("0", "0,2", "0-1";
client_cpus = ""              # "": not pinned) and the driver's clients (with the path's
                              # processes) to these, so that neither takes the other's core
                              # (servers.cpus; the run records both)
stack = "fastapi@uvicorn"     # the server stack, framework@server: a framework under an
                              # HTTP server (stacks.py lists them; `bench.py run --help`
                              # too); the run records it. Its packages: the [stacks] extra
workers = 1                   # a threaded stack's (flask@gunicorn's) worker processes: 1
                              # only (polls, resumes and timelines must reach the worker
                              # holding the stream; use server_processes for more)
threads = 0                   # a threaded stack's threads per worker (a stream holds one);
                              # 0: 4 per server core (of server_cpus when pinned)
http = "auto"                 # the clients' HTTP version: auto (the path's: 2 through
                              # nginx-h2, else 1.1) | 1.1 | 2 (nginx-h2, or h2c to a stack
                              # that speaks it) | 3 (QUIC to a stack that speaks it, on
                              # loopback or through net:) | best (the newest the stack and
                              # path allow, at each point); a version nothing in play
                              # speaks is refused (harness.measure.scenario.http_versions)

[source]
kind = "mock"                 # mock | openai (a live endpoint) | trace (a recorded trace)
preset = "chat"               # mock: instant | chat | local | reasoning | steady
ttft_ms = 350                 # mock: optional overrides of the preset
tokens_per_s = 80
tokens_per_response = 100
# base_url = "http://127.0.0.1:8080/v1"   openai: the endpoint (key from OPENAI_API_KEY
# model = "smollm2"                        or TOKENWIRE_API_KEY, never from a file)
# temperature = 0.0                        openai: sampling (0: the same text per prompt)
# max_tokens = 64                          openai: cap per response
# trace = "scenarios/traces/x.jsonl"       trace: the file; request k replays its line k
# speed = 1.0                              trace: replay speed factor

prompts = "scenarios/prompts.txt"  # live sources: one prompt per line, request k uses line k
order = "auto"                # sequential | interleaved | auto (interleaved for live sources)
path = "loopback"             # between clients and server: loopback | nginx | nginx-h2 |
                              # net:PROFILE | net:rtt=80ms,... ; layers join with + (server
                              # side first: nginx+net:4g); a comma list compares several
streaming_headers = true      # push responses ask proxies not to buffer them (Cache-Control:
                              # no-cache, X-Accel-Buffering: no); false: a naive server
server_faults = []            # the failure lab: mistakes the server makes on purpose (nagle,
                              # headers_late, buffer_body, gzip_noflush, no_terminal,
                              # no_data_prefix: servers/faults.py, docs/failures.md); also a
                              # string, "nagle+headers_late"; fastapi@uvicorn only
heartbeat_s = 0               # keep-alive bytes after this long with nothing to send (SSE
                              # comments, blank NDJSON lines, WebSocket pings); 0: none

[sweep]                       # optional: run every value of one axis in one run folder
axis = "concurrency"          # concurrency | rate | poll_interval_ms | long_poll_wait_s |
                              # batch_ms | framing | preset | path | streaming_headers |
                              # client | stack | server_faults | heartbeat_s | http (a
                              # preset, streaming_headers, stack, server_faults, heartbeat_s
                              # or http sweep, or any sweep with http = "best",
                              # restarts the server at each point; over stacks, workers and
                              # threads apply to the threaded ones; a server_faults value
                              # is one fault, "none", or faults joined by +)
values = [1, 10, 50]

[inject]                      # test aid: a deliberate server-side regression
token_delay_ms = 5            # hold every token this long after the source emits it
pad_bytes = 0                 # add this many bytes of padding to every token message

[faults]                      # the fault benchmark: connections dropped on purpose
drop_at_token = 10            # after 10 tokens, drop the connection and resume at once
leave_at_token = 60           # after 60 tokens, leave for good (the server cancels)
resume_grace_s = 1            # the server's wait for a dropped push reader (default 5)

[load]                        # `bench.py load` and scenarios/locustfile.py (locust users)
shape = "steady"              # steady | step (a staircase up to users) | spike
users = 20                    # users per transport: steady throughout; step: the top;
                              # spike: the baseline before and after the spike
spawn_rate = 20               # users started (or stopped) per second
run_time_s = 20               # length of the test (per transport when order is sequential)
step_users = 5                # step: users added at each step
step_time_s = 5               # step: seconds between steps
spike_users = 60              # spike: users at the peak
spike_at_s = 8                # spike: when the peak starts
spike_time_s = 4              # spike: how long it lasts
think_time_s = 0              # a user's pause between streams (0: closed loop)
stop_timeout_s = 10           # at the end, streams in flight get this long to finish
```

In a load test `requests`, `concurrency`, `rate`, `arrivals` and `warmup` do not apply:
locust users stream in a closed loop for `run_time_s`. `order` decides whether the
transports run one after another (sequential: a locust run each, with its own CPU figures)
or together (interleaved: one locust run, users spread evenly over the transports).
"""

from __future__ import annotations

from harness.measure.scenario.model import (
    DEFAULT_KNOBS,
    KNOB_NAMES,
    LOAD_SHAPES,
    ORDERS,
    SERVER_AXES,
    SWEEP_AXES,
    Faults,
    Inject,
    Load,
    Scenario,
    Sweep,
)
from harness.measure.scenario.reading import (
    SOURCE_FLAGS,
    load_scenario,
    parse_source_flag,
    parse_sweep,
    parse_sweep_flag,
    parse_transports,
    scenario_from_dict,
    source_from_dict,
    with_overrides,
)
from harness.measure.scenario.validation import validated

__all__ = [
    "DEFAULT_KNOBS",
    "KNOB_NAMES",
    "LOAD_SHAPES",
    "ORDERS",
    "SERVER_AXES",
    "SOURCE_FLAGS",
    "SWEEP_AXES",
    "Faults",
    "Inject",
    "Load",
    "Scenario",
    "Sweep",
    "load_scenario",
    "parse_source_flag",
    "parse_sweep",
    "parse_sweep_flag",
    "parse_transports",
    "scenario_from_dict",
    "source_from_dict",
    "validated",
    "with_overrides",
]
