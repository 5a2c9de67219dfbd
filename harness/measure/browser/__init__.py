"""The `browser` client kind: a real Chromium page reads the streams, with the code a web
app would run (`page.js`): EventSource on `GET /v1/sse`, fetch with a ReadableStream reader
and an AbortController for chunked (and SSE over POST), WebSocket, fetch polling.

- `session.py`: the Chromium (Playwright), its pages, the clock checks, Chromium's CPU.
- `cdp.py`: the Chrome DevTools Protocol `Network` events of each stream.
- `clock.py`: the CDP clock's known-answer check; the page clock's calibration.
- `assemble.py`: a `StreamResult` from the page's messages stamped with CDP events.
- `client.py`: the `StreamClient` the driver runs, and what a phase records.
- `capability.py`: which client kinds exist, what the browser client refuses.
- `request_log.py`: a test aid: the server with every request logged (who asked what).

Stamps are CDP network timestamps, on the server's clock (CLOCK_MONOTONIC), checked with a
known answer before each phase. `scenario.client = "browser"` (`bench.py run --client
browser`) selects it; results have the same schema as the Python clients' runs.
"""
