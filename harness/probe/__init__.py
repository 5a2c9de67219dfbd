"""`bench.py probe URL`: does an endpoint really stream, and if not, why?

    request.py   what to probe: URL, method, body, headers (credentials from the environment)
    read.py      the only I/O: one request on a raw asyncio connection, every read stamped
    http1.py     HTTP/1.1 request bytes and an incremental response parser (h11: its
                 docstring says why not httptools)
    exchange.py  what one request saw: the head and the stamped body reads (plain data)
    decode.py    the stream's kind, events and what their payloads say
    responses.py an OpenAI Responses API stream: recognised, and what each event says
    analyse.py   one run's measures and findings
    reconnect.py the reconnect check: would EventSource loop, keep trying, or stop?
    verdict.py   the verdict over the repeats (the `buffered` rule and its thresholds are
                 in its docstring)
    problems.py  re-exports `wire.problems`: every finding's stable code, one-line
                 explanation and fix, in one table (shared with `bench.py run`)
    session.py   the repeats and the reconnect check
    report.py    the text report and the JSON object

Everything but `read.py` and `session.py` is pure, so the rules are tested on hand-made
reads, fed whole, byte by byte and at every split.
"""
