/**
 * Unit tests for the incremental body readers (core/providers/lines.ts) and the
 * n > 1 helpers (core/providers/merge.ts).
 */
import assert from "node:assert/strict";
import { readLines, readSseData, StreamIdleError } from "../../core/providers/lines.ts";
import { mergeChoiceStreams, mergeStreams, sumUsage } from "../../core/providers/merge.ts";
import type { ChatCompletionChunk } from "../../core/protocol.ts";

const enc = new TextEncoder();

/** A body that delivers `text` in the given byte pieces. */
function bodyOf(pieces: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i < pieces.length) controller.enqueue(pieces[i++]!);
      else controller.close();
    },
  });
}

function bytewise(text: string): ReadableStream<Uint8Array> {
  const bytes = enc.encode(text);
  return bodyOf(Array.from(bytes, (b) => new Uint8Array([b])));
}

function whole(text: string): ReadableStream<Uint8Array> {
  return bodyOf([enc.encode(text)]);
}

/** Splits at the given byte offsets. */
function splitAt(text: string, cuts: number[]): ReadableStream<Uint8Array> {
  const bytes = enc.encode(text);
  const pieces: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    pieces.push(bytes.slice(prev, c));
    prev = c;
  }
  return bodyOf(pieces);
}

async function collect(gen: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

/** A tiny deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ── readLines ──────────────────────────────────────────────────────────────────

const NDJSON = '{"message":{"content":"héllo 👋"}}\n{"message":{"content":"wörld"}}\r\n\n{"done":true}\n';
const NDJSON_LINES = [
  '{"message":{"content":"héllo 👋"}}',
  '{"message":{"content":"wörld"}}',
  '{"done":true}',
];

Deno.test("readLines: whole body, byte by byte, and random chunk boundaries agree", async () => {
  assert.deepEqual(await collect(readLines(whole(NDJSON))), NDJSON_LINES);
  assert.deepEqual(await collect(readLines(bytewise(NDJSON))), NDJSON_LINES);
  const next = rng(1);
  const size = enc.encode(NDJSON).length;
  for (let k = 0; k < 50; k++) {
    const cuts = [
      ...new Set(Array.from({ length: 1 + Math.floor(next() * 6) }, () => Math.floor(next() * size))),
    ]
      .sort((a, b) => a - b);
    assert.deepEqual(await collect(readLines(splitAt(NDJSON, cuts))), NDJSON_LINES, `cuts ${cuts}`);
  }
});

Deno.test("readLines: CRLF (also split between \\r and \\n), empty lines skipped", async () => {
  const text = "a\r\nb\r\n\r\n\nc\r\n";
  assert.deepEqual(await collect(readLines(whole(text))), ["a", "b", "c"]);
  assert.deepEqual(await collect(readLines(splitAt(text, [2, 5]))), ["a", "b", "c"]);
});

Deno.test("readLines: trailing line without a final newline", async () => {
  assert.deepEqual(await collect(readLines(bytewise('{"a":1}\n{"done":true}'))), [
    '{"a":1}',
    '{"done":true}',
  ]);
  assert.deepEqual(await collect(readLines(whole("x\r"))), ["x"]);
  assert.deepEqual(await collect(readLines(whole("x\n   "))), ["x"], "trailing blanks are no line");
  assert.deepEqual(await collect(readLines(whole(""))), []);
});

Deno.test("readLines: yields each line as soon as its bytes arrive", async () => {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  const it = readLines(body)[Symbol.asyncIterator]();
  controller.enqueue(enc.encode("first\nsec"));
  assert.deepEqual(await it.next(), { value: "first", done: false });
  const pending = it.next();
  controller.enqueue(enc.encode("ond\n"));
  assert.deepEqual(await pending, { value: "second", done: false });
  controller.close();
  assert.equal((await it.next()).done, true);
});

Deno.test("readLines: an idle upstream raises StreamIdleError", async () => {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  controller.enqueue(enc.encode("one\n"));
  const seen: string[] = [];
  const started = performance.now();
  await assert.rejects(
    async () => {
      for await (const line of readLines(body, 40)) seen.push(line);
    },
    (err: unknown) => {
      assert.ok(err instanceof StreamIdleError);
      assert.equal(err.idleMs, 40);
      assert.equal(err.message, "no data for 40 ms");
      return true;
    },
  );
  assert.deepEqual(seen, ["one"]);
  assert.ok(performance.now() - started >= 35);
});

Deno.test("readLines: steady data within the idle limit is fine", async () => {
  let n = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      await new Promise((r) => setTimeout(r, 10));
      if (n++ < 4) c.enqueue(enc.encode(`line${n}\n`));
      else c.close();
    },
  });
  assert.deepEqual(await collect(readLines(body, 200)), ["line1", "line2", "line3", "line4"]);
});

Deno.test("readLines: stopping early cancels the body", async () => {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(enc.encode("x\n")),
    cancel: () => void (cancelled = true),
  });
  for await (const _ of readLines(body)) break;
  assert.equal(cancelled, true);
});

// ── readSseData ────────────────────────────────────────────────────────────────

const SSE = [
  ": OPENROUTER PROCESSING",
  "",
  'data: {"choices":[{"delta":{"content":"héllo"}}]}',
  "",
  "event: message",
  "id: 7",
  "retry: 1000",
  'data:{"no":"space"}',
  "",
  "data: line one",
  "data: line two",
  "data:",
  "",
  ":keepalive",
  "",
  "data: [DONE]",
  "",
  "",
].join("\n");
const SSE_DATA = [
  '{"choices":[{"delta":{"content":"héllo"}}]}',
  '{"no":"space"}',
  "line one\nline two\n",
  "[DONE]",
];

Deno.test("readSseData: data payloads; comments and other fields skipped; multi-line joined", async () => {
  assert.deepEqual(await collect(readSseData(whole(SSE))), SSE_DATA);
  assert.deepEqual(await collect(readSseData(bytewise(SSE))), SSE_DATA);
  assert.deepEqual(await collect(readSseData(whole(SSE.replaceAll("\n", "\r\n")))), SSE_DATA);
  assert.deepEqual(await collect(readSseData(bytewise(SSE.replaceAll("\n", "\r\n")))), SSE_DATA);
  const next = rng(2);
  const size = enc.encode(SSE).length;
  for (let k = 0; k < 50; k++) {
    const cuts = [
      ...new Set(Array.from({ length: 1 + Math.floor(next() * 8) }, () => Math.floor(next() * size))),
    ]
      .sort((a, b) => a - b);
    assert.deepEqual(await collect(readSseData(splitAt(SSE, cuts))), SSE_DATA, `cuts ${cuts}`);
  }
});

Deno.test("readSseData: a trailing event without the final blank line (or newline) is kept", async () => {
  assert.deepEqual(await collect(readSseData(whole("data: a\n\ndata: b\n"))), ["a", "b"]);
  assert.deepEqual(await collect(readSseData(whole("data: a\n\ndata: b"))), ["a", "b"]);
  assert.deepEqual(await collect(readSseData(bytewise("data: x\ndata: y"))), ["x\ny"]);
  assert.deepEqual(await collect(readSseData(whole(": only a comment"))), []);
  assert.deepEqual(await collect(readSseData(whole(""))), []);
});

Deno.test("readSseData: an idle upstream raises StreamIdleError", async () => {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  controller.enqueue(enc.encode("data: 1\n\n: ping\n"));
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const d of readSseData(body, 30)) seen.push(d);
  }, StreamIdleError);
  assert.deepEqual(seen, ["1"]);
});

// ── mergeStreams / sumUsage ────────────────────────────────────────────────────

/** A hand-driven async iterable: push values, end, or fail it. */
function channel<T>() {
  const queue: IteratorResult<T>[] = [];
  let error: unknown;
  let wake: (() => void) | undefined;
  let returned = false;
  const kick = () => {
    wake?.();
    wake = undefined;
  };
  const iterable: AsyncIterable<T> = {
    [Symbol.asyncIterator]: () => ({
      async next(): Promise<IteratorResult<T>> {
        while (queue.length === 0 && error === undefined) await new Promise<void>((r) => (wake = r));
        if (queue.length > 0) return queue.shift()!;
        throw error;
      },
      return(): Promise<IteratorResult<T>> {
        returned = true;
        return Promise.resolve({ value: undefined, done: true });
      },
    }),
  };
  return {
    iterable,
    push: (v: T) => (queue.push({ value: v, done: false }), kick()),
    end: () => (queue.push({ value: undefined, done: true }), kick()),
    fail: (e: unknown) => ((error = e), kick()),
    get returned() {
      return returned;
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("mergeStreams: yields items in arrival order across sources", async () => {
  const a = channel<string>();
  const b = channel<string>();
  const out: string[] = [];
  const done = (async () => {
    for await (const x of mergeStreams([a.iterable, b.iterable])) out.push(x);
  })();
  b.push("b1");
  await tick();
  a.push("a1");
  await tick();
  b.push("b2");
  await tick();
  b.end();
  await tick();
  a.push("a2");
  await tick();
  a.end();
  await done;
  assert.deepEqual(out, ["b1", "a1", "b2", "a2"]);
});

Deno.test("mergeStreams: plain async generators, uneven lengths, empty sources", async () => {
  async function* gen(prefix: string, n: number) {
    for (let i = 0; i < n; i++) yield `${prefix}${i}`;
  }
  const out: string[] = [];
  for await (const x of mergeStreams([gen("a", 3), gen("b", 0), gen("c", 5)])) out.push(x);
  assert.deepEqual(out.sort(), ["a0", "a1", "a2", "c0", "c1", "c2", "c3", "c4"]);
  const none: string[] = [];
  for await (const x of mergeStreams<string>([])) none.push(x);
  assert.deepEqual(none, []);
});

Deno.test("mergeStreams: an error propagates and the other sources are closed", async () => {
  const a = channel<number>();
  const b = channel<number>();
  const out: number[] = [];
  const done = (async () => {
    for await (const x of mergeStreams([a.iterable, b.iterable])) out.push(x);
  })();
  a.push(1);
  await tick();
  b.fail(new Error("upstream broke"));
  await assert.rejects(done, /upstream broke/);
  assert.deepEqual(out, [1]);
  assert.equal(a.returned, true, "the healthy source is closed");
});

Deno.test("mergeStreams: a consumer that stops early closes every source", async () => {
  const a = channel<number>();
  const b = channel<number>();
  a.push(1);
  for await (const _ of mergeStreams([a.iterable, b.iterable])) break;
  assert.equal(a.returned, true);
  assert.equal(b.returned, true);
});

Deno.test("sumUsage: sums tokens, and cost only when some part has one", () => {
  assert.deepEqual(sumUsage([]), { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
  assert.deepEqual(
    sumUsage([
      { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      { prompt_tokens: 10, completion_tokens: 7, total_tokens: 17 },
    ]),
    { prompt_tokens: 20, completion_tokens: 12, total_tokens: 32 },
  );
  const withCost = sumUsage([
    { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, cost: 0.25 },
    { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, cost: 0.5 },
  ]);
  assert.deepEqual(withCost, { prompt_tokens: 3, completion_tokens: 6, total_tokens: 9, cost: 0.75 });
  assert.equal(sumUsage([{ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost: 0 }]).cost, 0);
});

Deno.test("mergeChoiceStreams: choices re-indexed per stream, usage summed into one final chunk", async () => {
  const chunk = (content: string | null, usage?: ChatCompletionChunk["usage"]): ChatCompletionChunk => ({
    id: "chatcmpl-x",
    object: "chat.completion.chunk",
    created: 1,
    model: "m",
    choices: content === null ? [] : [{ index: 0, delta: { content }, finish_reason: null }],
    ...(usage ? { usage } : {}),
  });
  async function* s(parts: string[], usage: number) {
    for (const p of parts) yield chunk(p);
    yield chunk(null, { prompt_tokens: usage, completion_tokens: usage, total_tokens: 2 * usage });
  }
  const out: ChatCompletionChunk[] = [];
  for await (const c of mergeChoiceStreams([s(["a", "b"], 1), s(["c"], 10)])) out.push(c);
  const byIndex = new Map<number, string>();
  for (const c of out.slice(0, -1)) {
    assert.equal(c.choices.length, 1);
    assert.equal(c.usage, undefined);
    const i = c.choices[0]!.index;
    byIndex.set(i, (byIndex.get(i) ?? "") + c.choices[0]!.delta.content);
  }
  assert.deepEqual(Object.fromEntries(byIndex), { 0: "ab", 1: "c" });
  const last = out.at(-1)!;
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, { prompt_tokens: 11, completion_tokens: 11, total_tokens: 22 });
});
