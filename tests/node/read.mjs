// Reads one tokenwire stream with the Vercel AI SDK's own client code and prints what the
// SDK made of it as one JSON object on stdout.
//
//   node read.mjs vercel-ui   URL '{"seed": 3}'   # ai: parseJsonEventStream + uiMessageChunkSchema
//                                                 #     -> readUIMessageStream (as DefaultChatTransport)
//   node read.mjs vercel-data URL '{"seed": 3}'   # @ai-sdk/ui-utils: processDataStream
//
// Output: {"text": the answer's text, "events": what the SDK reported, "headers": {...}}.
// Any SDK error (a chunk that fails the schema, an unknown part code, an error part) makes
// the script exit 1 with the error on stderr.

import { processDataStream } from "@ai-sdk/ui-utils";
import { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema } from "ai";

const [kind, url, body] = process.argv.slice(2);

const response = await fetch(url, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body,
});
if (response.status !== 200) {
  throw new Error(`HTTP ${response.status}: ${await response.text()}`);
}
const headers = Object.fromEntries(response.headers.entries());

async function readUI(stream) {
  // what DefaultChatTransport.processResponseStream does with a response body
  const chunks = parseJsonEventStream({ stream, schema: uiMessageChunkSchema }).pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        if (!chunk.success) throw chunk.error;
        controller.enqueue(chunk.value);
      },
    }),
  );
  const events = [];
  const seen = chunks.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        if (chunk.type !== "text-delta") events.push(chunk.type);
        controller.enqueue(chunk);
      },
    }),
  );
  let message;
  for await (const snapshot of readUIMessageStream({ stream: seen, terminateOnError: true })) {
    message = snapshot;
  }
  const texts = (message?.parts ?? []).filter((part) => part.type === "text");
  events.push(...texts.map((part) => `text part ${part.state}`));
  return { text: texts.map((part) => part.text).join(""), events };
}

async function readData(stream) {
  let text = "";
  const events = [];
  await processDataStream({
    stream,
    onTextPart: (value) => {
      text += value;
    },
    onStartStepPart: (value) => events.push(`start_step ${value.messageId}`),
    onFinishStepPart: (value) => events.push(`finish_step ${value.finishReason}`),
    onFinishMessagePart: (value) =>
      events.push(`finish_message ${value.finishReason} ${value.usage?.completionTokens}`),
    onErrorPart: (value) => {
      throw new Error(`error part: ${value}`);
    },
  });
  return { text, events };
}

const read = { "vercel-ui": readUI, "vercel-data": readData }[kind];
if (read === undefined) throw new Error(`unknown kind ${kind}: vercel-ui or vercel-data`);
const result = await read(response.body);
process.stdout.write(JSON.stringify({ ...result, headers }) + "\n");
