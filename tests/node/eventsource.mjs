// Reads one tokenwire SSE stream with the `eventsource` package's EventSource (the one Node
// code uses; its reconnects are its own) and prints what it got as one JSON object on stdout.
//
//   node eventsource.mjs URL json|openai
//
// Output: {"texts": token texts in order, "indices": the json framing's token indices,
// "ids": each message's lastEventId, "starts": openai role chunks seen, "opens": open events,
// "errors": error events (each connection that failed before the end is one)}.
// The stream is read to its terminal event ({"done":true} for json, [DONE] for openai);
// EventSource closing on its own (a refused reconnect: 409, 204) or 60 s without the end
// makes the script exit 1 with what it had on stderr.

import { EventSource } from "eventsource";

const [url, framing] = process.argv.slice(2);
if (!url || !["json", "openai"].includes(framing)) {
  console.error("usage: node eventsource.mjs URL json|openai");
  process.exit(2);
}

const got = { texts: [], indices: [], ids: [], starts: 0, opens: 0, errors: 0 };
const es = new EventSource(url);

function finish(code, why) {
  clearTimeout(timer);
  es.close();
  if (code === 0) {
    process.stdout.write(`${JSON.stringify(got)}\n`);
  } else {
    process.stderr.write(`${why}: ${JSON.stringify(got)}\n`);
  }
  process.exit(code);
}

const timer = setTimeout(() => finish(1, "no terminal event within 60 s"), 60_000);

es.onopen = () => {
  got.opens += 1;
};
es.onerror = (event) => {
  got.errors += 1;
  if (es.readyState === EventSource.CLOSED) {
    finish(1, `EventSource closed (${event.code ?? ""} ${event.message ?? ""})`);
  }
};
es.onmessage = (event) => {
  got.ids.push(event.lastEventId);
  if (framing === "openai") {
    if (event.data === "[DONE]") {
      finish(0);
      return;
    }
    const delta = JSON.parse(event.data).choices?.[0]?.delta ?? {};
    if (delta.role) got.starts += 1;
    if (delta.content) got.texts.push(delta.content);
    return;
  }
  const message = JSON.parse(event.data);
  if (message.done === true) {
    finish(0);
    return;
  }
  got.indices.push(message.i);
  got.texts.push(message.t);
};
