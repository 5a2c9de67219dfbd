/*
 * tokenwire's browser client: the code a web app runs to read one token stream, per
 * transport, with the browser's own APIs (EventSource, fetch + ReadableStream +
 * AbortController, WebSocket, fetch polling). It is evaluated in a page of the tokenwire
 * server's own origin, so every request is same-origin (no CORS, no preflight).
 *
 * window.tokenwire.run(spec) reads one stream and resolves with what the page received:
 *
 *   { startMs, endMs, requests, done, error: null | {kind, message},
 *     messages: [[payload, jsMs, req, pos], ...], heads: [[req, jsMs], ...] }
 *
 * - payload: one framed message as text (an SSE event's data, an NDJSON line, a WebSocket
 *   or WebTransport message, a poll's whole JSON body). Python decodes it with the project's own codecs
 *   (wire/), so both clients share one decoder.
 * - jsMs: performance.now() when the JavaScript got the bytes that completed it (the read
 *   that resolved, the event that fired).
 * - req: which request of the stream carried it (0 for the one request of a push stream;
 *   an EventSource reconnect is request 1; polling: 0 is the create request, poll n is n+1).
 * - pos: where in that request it ended: the byte offset just past it for fetch bodies
 *   (chunked, SSE over fetch), the message's ordinal for EventSource, WebSocket and
 *   WebTransport, 0 for a poll. Python maps it to the Chrome DevTools Protocol network event
 *   that delivered it (CDP has none for WebTransport's reads: the page's clock stamps those).
 *
 * wire (WebTransport only): [sent, received], the stream's bytes as the page wrote and read
 * them, length prefixes included (CDP counts none of a WebTransport session's bytes).
 *
 * heads: when the JavaScript got each HTTP response's head (fetch resolved, EventSource
 * opened), to set against the network process's own stamp of it.
 *
 * renders: [[message index, jsMs], ...]: each message's text is appended to the page as it
 * comes, as a chat UI shows tokens, and stamped in the first animation frame after that
 * DOM update (requestAnimationFrame, then a task: the frame was produced). Messages shown
 * in one frame share its stamp.
 *
 * The page only recognises the terminal message (to stop: close the EventSource, stop
 * polling); every other check is Python's, on the same payloads.
 */
"use strict";
(() => {
  class Failure extends Error {
    constructor(kind, message) {
      super(message);
      this.kind = kind; // an errors.ErrorKind value: connect, http_status, protocol, ...
    }
  }

  const RENDER_WAIT_MS = 1000; // at the end, the longest wait for the last frame's stamp

  /* The DOM a stream's text goes into, and the frame stamps of its messages (`renders`). */
  function renderer(rec) {
    const view = document.body.appendChild(document.createElement("div"));
    let pending = [];
    let frame = Promise.resolve();
    const stamp = () => {
      const t = performance.now();
      for (const index of pending) rec.renders.push([index, t]);
      pending = [];
    };
    return {
      show(index, text) {
        view.appendChild(document.createTextNode(text));
        if (pending.push(index) === 1) {
          frame = new Promise((resolve) =>
            requestAnimationFrame(() => setTimeout(() => resolve(stamp()), 0)),
          );
        }
      },
      settled: () => Promise.race([frame, sleep(RENDER_WAIT_MS)]),
    };
  }
  const views = new WeakMap(); // rec -> its renderer (rec itself goes back to Python)

  /* One message received: recorded, and shown. */
  function deliver(rec, message) {
    rec.messages.push(message);
    views.get(rec)?.show(rec.messages.length - 1, message[0]);
  }

  const utf8 = () => new TextDecoder("utf-8", { fatal: true });
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

  function decodeUtf8(bytes) {
    try {
      return utf8().decode(bytes);
    } catch (e) {
      throw new Failure("protocol", `a message is not valid UTF-8: ${e.message}`);
    }
  }

  /* The framing's terminal message: json {"done":true,..}; openai [DONE] (over chunked
     {"choices":[],"done":true}), or the error object a failed generation sends in its
     place. Anything unparsable is Python's to
     report (it decodes every payload), so it is not terminal here. */
  function isTerminal(framing, payload) {
    if (framing === "openai" && payload === "[DONE]") return true;
    let obj;
    try {
      obj = JSON.parse(payload);
    } catch (e) {
      return false;
    }
    if (obj === null || typeof obj !== "object") return false;
    return framing === "openai" ? obj.error != null || obj.done === true : obj.done === true;
  }

  function headers(spec, extra) {
    const all = { ...extra };
    if (spec.token) all.authorization = `Bearer ${spec.token}`;
    return all;
  }

  function asFailure(error, kind) {
    if (error instanceof Failure) return error;
    if (error && error.name === "AbortError") return new Failure("timeout", "the stream timed out");
    return new Failure(kind, `${error && error.name}: ${error && error.message}`);
  }

  /* A timeout for the whole stream, as an AbortSignal fetch can take. */
  function deadline(spec) {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Failure("timeout", `the stream did not finish within ${spec.timeoutMs / 1000} s`)),
      spec.timeoutMs,
    );
    return { controller, signal: controller.signal, clear: () => clearTimeout(timer) };
  }

  // --- EventSource: GET /v1/sse?seed=..&stream=ID ---------------------------------------

  function eventSource(spec, rec) {
    const query = new URLSearchParams({ seed: String(spec.request.seed) });
    if (spec.request.max_tokens != null) query.set("max_tokens", String(spec.request.max_tokens));
    if (spec.request.prompt) query.set("prompt", spec.request.prompt);
    query.set("stream", spec.request.stream_id);
    query.set("framing", spec.framing);
    return new Promise((resolve) => {
      let req = -1;
      let ordinal = 0;
      let settled = false;
      const source = new EventSource(`${spec.base}/v1/sse?${query}`);
      rec.requests += 1;
      const finish = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        source.close(); // at the terminal event: EventSource must not reconnect
        if (error) rec.error = error;
        resolve();
      };
      const timer = setTimeout(
        () => finish(new Failure("timeout", `the stream did not finish within ${spec.timeoutMs / 1000} s`)),
        spec.timeoutMs,
      );
      source.onopen = () => {
        req += 1; // a reconnect (Last-Event-ID, by the browser itself) is a new request
        rec.heads.push([req, performance.now()]);
        ordinal = 0;
        if (req > 0) rec.requests += 1;
      };
      source.onmessage = (event) => {
        const t = performance.now();
        deliver(rec, [event.data, t, req, ordinal++]);
        if (isTerminal(spec.framing, event.data)) {
          rec.done = true;
          finish(null);
        }
      };
      source.onerror = () => {
        if (source.readyState === EventSource.CLOSED) {
          // a status other than 200 or a wrong Content-Type: EventSource gives up
          finish(new Failure(req < 0 ? "http_status" : "incomplete", "EventSource failed and closed"));
        } // CONNECTING: the browser reconnects by itself with Last-Event-ID (a resume)
      };
    });
  }

  // --- fetch streams: POST /v1/sse, POST /v1/chunked -------------------------------------

  /* Splits a body into lines on the byte 0x0A (never inside a UTF-8 sequence), keeping
     each line's end offset in the body. */
  class Lines {
    constructor() {
      this.pending = new Uint8Array(0);
      this.start = 0; // body offset of pending[0]
    }
    feed(bytes) {
      const data = new Uint8Array(this.pending.length + bytes.length);
      data.set(this.pending);
      data.set(bytes, this.pending.length);
      const lines = [];
      let from = 0;
      for (let k = data.indexOf(10); k !== -1; k = data.indexOf(10, from)) {
        lines.push([data.subarray(from, k), this.start + k + 1]);
        from = k + 1;
      }
      this.pending = data.slice(from);
      this.start += from;
      return lines;
    }
    close() {
      if (!this.pending.length) return [];
      const last = [[this.pending, this.start + this.pending.length]];
      this.pending = new Uint8Array(0);
      return last;
    }
  }

  /* NDJSON: every line is a message, a blank one a keep-alive (Python's
     wire.ndjson.LineDecoder: CR stripped, blank lines skipped). */
  function ndjson() {
    const lines = new Lines();
    const text = (bytes) => decodeUtf8(bytes).replace(/\r$/, "");
    const messages = (found) =>
      found.map(([line, end]) => [text(line), end]).filter(([line]) => line !== "");
    return {
      feed: (bytes) => messages(lines.feed(bytes)),
      close: () => messages(lines.close()),
    };
  }

  /* SSE event-stream interpretation (WHATWG): data lines accumulate, a blank line
     dispatches, comments and other fields are skipped. The server ends lines with LF. */
  function eventStream() {
    const lines = new Lines();
    let data = null;
    const line = ([bytes, end]) => {
      const text = decodeUtf8(bytes).replace(/\r$/, "");
      if (text === "") {
        const event = data;
        data = null;
        return event === null ? [] : [[event, end]];
      }
      if (text.startsWith(":")) return [];
      const colon = text.indexOf(":");
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? "" : text.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") data = data === null ? value : `${data}\n${value}`;
      return [];
    };
    return {
      feed: (bytes) => lines.feed(bytes).flatMap(line),
      close: () => [], // an event not ended by a blank line is dropped
    };
  }

  async function fetchStream(spec, rec, path, accept, decoder) {
    const timeout = deadline(spec);
    const extra = accept === "text/event-stream" ? { "cache-control": "no-store" } : {};
    try {
      let response;
      rec.requests += 1;
      try {
        response = await fetch(`${spec.base}${path}?framing=${encodeURIComponent(spec.framing)}`, {
          method: "POST",
          headers: headers(spec, { "content-type": "application/json", accept, ...extra }),
          body: JSON.stringify(spec.request),
          signal: timeout.signal,
          cache: "no-store",
        });
      } catch (e) {
        throw asFailure(timeout.signal.aborted ? timeout.signal.reason : e, "connect");
      }
      rec.heads.push([0, performance.now()]);
      if (response.status !== 200) {
        throw new Failure("http_status", `HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
      }
      const type = response.headers.get("content-type") || "";
      if (!type.startsWith(accept)) throw new Failure("protocol", `expected Content-Type ${accept}, got ${type}`);
      const reader = response.body.getReader();
      for (;;) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch (e) {
          throw asFailure(timeout.signal.aborted ? timeout.signal.reason : e, "incomplete");
        }
        const t = performance.now();
        const messages = chunk.done ? decoder.close() : decoder.feed(chunk.value);
        for (const [payload, end] of messages) {
          deliver(rec, [payload, t, 0, end]);
          if (isTerminal(spec.framing, payload)) rec.done = true;
        }
        if (chunk.done) break;
      }
      if (!rec.done) throw new Failure("incomplete", "the response ended without a terminal message");
    } finally {
      timeout.clear();
    }
  }

  // --- WebSocket: /v1/ws, the request as the first message ---------------------------------

  function webSocket(spec, rec) {
    const url = `${spec.base.replace(/^http/, "ws")}/v1/ws`;
    return new Promise((resolve) => {
      let ordinal = 0;
      let opened = false;
      let settled = false;
      const finish = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) {
          rec.error = error;
          socket.close();
        } // else the server closes after its terminal message; the browser answers it
        resolve();
      };
      const protocols = spec.token ? ["tokenwire", `tokenwire.bearer.${spec.token}`] : [];
      rec.requests += 1;
      const socket = new WebSocket(url, protocols);
      const timer = setTimeout(
        () => finish(new Failure("timeout", `the stream did not finish within ${spec.timeoutMs / 1000} s`)),
        spec.timeoutMs,
      );
      socket.onopen = () => {
        opened = true;
        socket.send(JSON.stringify({ ...spec.request, framing: spec.framing }));
      };
      socket.onmessage = (event) => {
        const t = performance.now();
        if (typeof event.data !== "string") {
          finish(new Failure("protocol", "expected text messages, got a binary one"));
          return;
        }
        deliver(rec, [event.data, t, 0, ordinal++]);
        if (isTerminal(spec.framing, event.data)) {
          rec.done = true;
          finish(null);
        }
      };
      socket.onclose = (event) => {
        if (opened) {
          finish(new Failure("incomplete", `the server closed the WebSocket (${event.code}) without a terminal message`));
        } else {
          finish(new Failure("connect", `the WebSocket did not open (${event.code})`));
        }
      };
    });
  }

  // --- WebTransport: a session at /v1/wt, a bidirectional stream, length-prefixed messages --

  /* One message as the stream carries it: a QUIC varint of its UTF-8 length, then it. */
  function lengthPrefixed(text) {
    const body = new TextEncoder().encode(text);
    const n = body.length;
    if (n >= 2 ** 30) throw new Failure("protocol", `a message of ${n} bytes is too long to send`);
    const head =
      n < 64 ? [n]
      : n < 16384 ? [0x40 | (n >> 8), n & 0xff]
      : [0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
    const out = new Uint8Array(head.length + n);
    out.set(head);
    out.set(body, head.length);
    return out;
  }

  /* Feed the stream's bytes; get back the complete messages. */
  function prefixedMessages() {
    let buffer = new Uint8Array(0);
    return (bytes) => {
      const joined = new Uint8Array(buffer.length + bytes.length);
      joined.set(buffer);
      joined.set(bytes, buffer.length);
      const out = [];
      let at = 0;
      while (at < joined.length) {
        const size = 1 << (joined[at] >> 6);
        if (joined.length - at < size) break;
        let length = joined[at] & 0x3f;
        for (let k = 1; k < size; k++) length = length * 256 + joined[at + k];
        if (joined.length - at - size < length) break;
        out.push(decodeUtf8(joined.subarray(at + size, at + size + length)));
        at += size + length;
      }
      buffer = joined.slice(at);
      return out;
    };
  }

  async function webTransport(spec, rec) {
    if (typeof WebTransport === "undefined") {
      throw new Failure("connect", "this page has no WebTransport (not a secure context?)");
    }
    const options = spec.certHash
      ? { serverCertificateHashes: [{ algorithm: "sha-256", value: hexBytes(spec.certHash) }] }
      : {};
    const timeout = deadline(spec);
    const expired = new Promise((_, reject) =>
      timeout.signal.addEventListener("abort", () => reject(timeout.signal.reason)),
    );
    expired.catch(() => {});
    rec.requests += 1;
    rec.wire = [0, 0]; // the stream's bytes: sent, received (length prefixes included)
    let session;
    try {
      session = new WebTransport(spec.wtUrl, options);
      session.closed.catch(() => {});
      await Promise.race([session.ready, expired]);
    } catch (e) {
      timeout.clear();
      session?.close();
      throw asFailure(e, "connect");
    }
    try {
      const stream = await Promise.race([session.createBidirectionalStream(), expired]);
      const writer = stream.writable.getWriter();
      const first = lengthPrefixed(JSON.stringify({ ...spec.request, framing: spec.framing }));
      rec.wire[0] += first.length;
      await Promise.race([writer.write(first), expired]); // the writer stays open: closing it is leaving
      const reader = stream.readable.getReader();
      const messages = prefixedMessages();
      let ordinal = 0;
      reading: for (;;) {
        let read;
        try {
          read = await Promise.race([reader.read(), expired]);
        } catch (e) {
          throw asFailure(e, "incomplete");
        }
        const t = performance.now();
        if (read.done) break;
        rec.wire[1] += read.value.length;
        for (const message of messages(read.value)) {
          deliver(rec, [message, t, 0, ordinal++]);
          if (isTerminal(spec.framing, message)) {
            rec.done = true;
            break reading;
          }
        }
      }
      if (!rec.done) {
        throw new Failure("incomplete", "the server ended the WebTransport stream without a terminal message");
      }
    } finally {
      timeout.clear();
      session.close();
    }
  }

  function hexBytes(hex) {
    return new Uint8Array(hex.match(/../g).map((h) => parseInt(h, 16)));
  }

  // --- polling: POST /v1/streams, then GET /v1/streams/ID?offset=K[&wait=S] ----------------

  async function polling(spec, rec, long) {
    const timeout = deadline(spec);
    const call = async (method, path, body, expected) => {
      const req = rec.requests;
      rec.requests += 1;
      let response;
      try {
        response = await fetch(`${spec.base}${path}`, {
          method,
          headers: headers(spec, body === undefined ? {} : { "content-type": "application/json" }),
          body,
          signal: timeout.signal,
          cache: "no-store",
        });
      } catch (e) {
        throw asFailure(timeout.signal.aborted ? timeout.signal.reason : e, "connect");
      }
      rec.heads.push([req, performance.now()]);
      let text;
      try {
        text = await response.text();
      } catch (e) {
        throw asFailure(timeout.signal.aborted ? timeout.signal.reason : e, "incomplete");
      }
      if (response.status !== expected) {
        throw new Failure("http_status", `${method} ${path.split("?")[0]}: HTTP ${response.status}: ${text.slice(0, 200)}`);
      }
      return text;
    };
    try {
      const created = await call("POST", "/v1/streams", JSON.stringify(spec.request), 201);
      let id;
      try {
        id = JSON.parse(created).id;
      } catch (e) {
        throw new Failure("protocol", `stream creation must answer {"id": "..."}: ${created.slice(0, 80)}`);
      }
      if (typeof id !== "string") throw new Failure("protocol", 'stream creation must answer {"id": "..."}');
      const started = performance.now();
      const interval = spec.pollIntervalMs;
      let offset = 0;
      for (let n = 0; ; n++) {
        if (!long && n > 0) {
          // the next point of a fixed grid from the creation, like setInterval
          const elapsed = performance.now() - started;
          await sleep(Math.ceil(elapsed / interval) * interval - elapsed);
        }
        const query = long ? `offset=${offset}&wait=${spec.longPollWait}` : `offset=${offset}`;
        const body = await call("GET", `/v1/streams/${encodeURIComponent(id)}?${query}`, undefined, 200);
        deliver(rec, [body, performance.now(), n + 1, 0]);
        let batch;
        try {
          batch = JSON.parse(body);
        } catch (e) {
          throw new Failure("protocol", `a poll answered something other than JSON: ${body.slice(0, 80)}`);
        }
        if (!batch || typeof batch.next !== "number" || typeof batch.done !== "boolean") {
          throw new Failure("protocol", `a poll answered no "next" and "done": ${body.slice(0, 80)}`);
        }
        if (batch.done) {
          rec.done = true;
          return;
        }
        offset = batch.next;
      }
    } finally {
      timeout.clear();
    }
  }

  // by reader, as each transport's registry entry names it (`page_reader` in transports.py)
  const RUNNERS = {
    eventStream: (spec, rec) =>
      spec.sseApi === "fetch"
        ? fetchStream(spec, rec, "/v1/sse", "text/event-stream", eventStream())
        : eventSource(spec, rec),
    ndjsonStream: (spec, rec) => fetchStream(spec, rec, "/v1/chunked", "application/x-ndjson", ndjson()),
    webSocket: webSocket,
    webTransport: webTransport,
    polls: (spec, rec) => polling(spec, rec, false),
    heldPolls: (spec, rec) => polling(spec, rec, true),
  };

  async function run(spec) {
    const rec = { startMs: performance.now(), endMs: null, requests: 0, done: false, error: null, messages: [], heads: [], renders: [] };
    const view = renderer(rec);
    views.set(rec, view);
    try {
      const runner = RUNNERS[spec.reader];
      if (!runner) throw new Failure("protocol", `this page has no reader ${spec.reader}`);
      await runner(spec, rec);
    } catch (e) {
      const failure = asFailure(e, "transport");
      rec.error = { kind: failure.kind, message: failure.message };
    }
    if (rec.error instanceof Failure) rec.error = { kind: rec.error.kind, message: rec.error.message };
    rec.endMs = performance.now();
    await view.settled(); // the last messages' frame (after endMs: not the stream's time)
    return rec;
  }

  // the readers' own codecs, for the tests (tests/harness/measure/test_browser.py)
  const codecs = { lengthPrefixed, prefixedMessages };
  window.tokenwire = { run, readers: Object.keys(RUNNERS), codecs };
})();
