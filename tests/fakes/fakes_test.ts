/**
 * Tests that the fake upstreams speak their wire formats: Ollama's NDJSON and JSON
 * (docs/api.md), OpenAI SSE chunks valid against the official
 * `CreateChatCompletionStreamResponse` schema, OpenRouter's comment lines, usage cost
 * and error shapes, statuses, and clean shutdown.
 */
import assert from "node:assert/strict";
import { validateSchema } from "../schemas/validate.ts";
import { startFakeOllama } from "./fake_ollama.ts";
import { startFakeOpenAI } from "./fake_openai.ts";

type Obj = Record<string, unknown>;

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the weather in a given city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const TIME_TOOL = {
  type: "function",
  function: {
    name: "get_time",
    parameters: { type: "object", properties: { utc_offset: { type: "integer" } } },
  },
};

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

async function ndjson(res: Response): Promise<Obj[]> {
  const text = await res.text();
  assert.ok(text.endsWith("\n"), "NDJSON ends with a newline");
  return text.trimEnd().split("\n").map((l) => JSON.parse(l) as Obj);
}

/** Splits an SSE body into comment lines and `data:` payloads (`[DONE]` kept as a string). */
async function sse(res: Response): Promise<{ comments: string[]; data: string[] }> {
  assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
  const text = await res.text();
  const comments: string[] = [], data: string[] = [];
  for (const frame of text.split("\n\n")) {
    for (const line of frame.split("\n")) {
      if (line.startsWith(":")) comments.push(line);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
      else assert.equal(line, "", `unexpected SSE line ${line}`);
    }
  }
  return { comments, data };
}

const chunksOf = (data: string[]) => data.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d) as Obj);
const deltaText = (chunks: Obj[]) =>
  chunks.map((c) => {
    const choice = (c.choices as Obj[])[0];
    return (choice?.delta as Obj | undefined)?.content ?? "";
  }).join("");

// ── Ollama native API ──────────────────────────────────────────────────────────

Deno.test("ollama: tags, version, show, unknown model", async () => {
  const up = startFakeOllama({ models: ["qwen3:8b"] });
  try {
    const tags = await (await fetch(`${up.url}/api/tags`)).json() as { models: Obj[] };
    const names = tags.models.map((m) => m.name);
    assert.ok(
      names.includes("llama3.2:latest") && names.includes("echo:latest") && names.includes("qwen3:8b"),
    );
    for (const m of tags.models) {
      for (const k of ["name", "model", "modified_at", "size", "digest", "details"]) assert.ok(k in m, k);
      assert.match(m.digest as string, /^[0-9a-f]{64}$/);
    }
    assert.match((await (await fetch(`${up.url}/api/version`)).json()).version, /^\d+\.\d+\.\d+$/);
    const show = await (await post(`${up.url}/api/show`, { model: "no-tools-support" })).json();
    assert.deepEqual(show.capabilities, ["completion"]);
    assert.equal(show.details.format, "gguf");
    const missing = await post(`${up.url}/api/show`, { model: "nope" });
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: "model 'nope' not found" });
    const chat = await post(`${up.url}/api/chat`, {
      model: "nope",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(chat.status, 404);
    assert.deepEqual(await chat.json(), { error: "model 'nope' not found" });
  } finally {
    await up.close();
  }
});

Deno.test("ollama: /api/chat streams NDJSON by default, one word per chunk, final stats", async () => {
  const up = startFakeOllama();
  try {
    const res = await post(`${up.url}/api/chat`, {
      model: "echo",
      messages: [{ role: "system", content: "be nice" }, { role: "user", content: "why is the sky blue?" }],
    });
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    const lines = await ndjson(res);
    assert.equal(lines.length, 6);
    const last = lines.at(-1)!;
    const contents = lines.slice(0, -1).map((l) => (l.message as Obj).content);
    assert.deepEqual(contents, ["why", " is", " the", " sky", " blue?"]);
    for (const l of lines.slice(0, -1)) {
      assert.equal(l.done, false);
      assert.equal(l.model, "echo");
      assert.equal((l.message as Obj).role, "assistant");
      assert.ok(!Number.isNaN(Date.parse(l.created_at as string)));
    }
    assert.equal(last.done, true);
    assert.equal(last.done_reason, "stop");
    assert.equal(last.prompt_eval_count, 7);
    assert.equal(last.eval_count, 5);
    for (const k of ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"]) {
      assert.equal(typeof last[k], "number", k);
    }
    assert.deepEqual(last.message, { role: "assistant", content: "" });
    assert.equal(up.requests.length, 1);
    assert.equal(up.requests[0]!.path, "/api/chat");
    assert.equal((up.requests[0]!.body as Obj).model, "echo");
  } finally {
    await up.close();
  }
});

Deno.test("ollama: non-streaming, length, thinking, json, tokens-N, load", async () => {
  const up = startFakeOllama();
  const chat = async (model: string, extra: Obj = {}) =>
    await (await post(`${up.url}/api/chat`, {
      model,
      stream: false,
      messages: [{ role: "user", content: "hello there" }],
      ...extra,
    })).json();
  try {
    const echo = await chat("echo:latest");
    assert.deepEqual(echo.message, { role: "assistant", content: "hello there" });
    assert.equal(echo.done, true);
    assert.equal(echo.eval_count, 2);
    assert.equal((await chat("length")).done_reason, "length");
    const cut = await chat("tokens-10", { options: { num_predict: 3 } });
    assert.equal(cut.message.content, "tok0 tok1 tok2");
    assert.equal(cut.done_reason, "length");
    const thinking = await chat("thinking", { think: true });
    assert.equal(thinking.message.thinking, "Let me think about that.");
    assert.equal(thinking.message.content, "hello there");
    assert.equal((await chat("thinking", { think: false })).message.thinking, undefined);
    const schema = { type: "object", properties: { age: { type: "integer" } } };
    assert.deepEqual(JSON.parse((await chat("json", { format: schema })).message.content), schema);
    const lines = await ndjson(
      await post(`${up.url}/api/chat`, { model: "tokens-50", messages: [{ role: "user", content: "x" }] }),
    );
    assert.equal(lines.length, 51);
    assert.equal(lines.at(-1)!.eval_count, 50);
    const load = await (await post(`${up.url}/api/chat`, { model: "echo", messages: [] })).json();
    assert.equal(load.done_reason, "load");
    assert.equal(load.done, true);
  } finally {
    await up.close();
  }
});

Deno.test("ollama: tools — no id, parallel calls as objects, tool results, no-tools-support", async () => {
  const up = startFakeOllama();
  const ask = [{ role: "user", content: "weather in Paris and Tokyo?" }];
  try {
    const one = await (await post(`${up.url}/api/chat`, {
      model: "tools",
      stream: false,
      messages: ask,
      tools: [WEATHER_TOOL],
    })).json();
    assert.deepEqual(one.message.tool_calls, [{
      function: { name: "get_weather", arguments: { city: "city-1" } },
    }]);
    assert.equal(one.done_reason, "stop");

    const lines = await ndjson(
      await post(`${up.url}/api/chat`, {
        model: "tools-parallel",
        messages: ask,
        tools: [WEATHER_TOOL, TIME_TOOL],
      }),
    );
    assert.equal(lines.length, 2);
    assert.deepEqual((lines[0]!.message as Obj).tool_calls, [
      { function: { name: "get_weather", arguments: { city: "city-1" } } },
      { function: { name: "get_time", arguments: { utc_offset: 2 } } },
    ]);
    assert.equal(lines[1]!.done, true);

    const withId = await (await post(`${up.url}/api/chat`, {
      model: "tools-with-id",
      stream: false,
      messages: ask,
      tools: [WEATHER_TOOL],
    })).json();
    const call = withId.message.tool_calls[0];
    assert.match(call.id, /^call_/);
    assert.equal(call.function.index, 0);

    const history = [
      ...ask,
      { role: "assistant", content: "", tool_calls: one.message.tool_calls },
      { role: "tool", content: "11 degrees celsius", tool_name: "get_weather" },
      { role: "tool", content: "sunny", tool_name: "get_weather" },
    ];
    const final = await (await post(`${up.url}/api/chat`, {
      model: "tools-parallel",
      stream: false,
      messages: history,
      tools: [WEATHER_TOOL],
    })).json();
    assert.equal(final.message.content, "Tool results: 11 degrees celsius; sunny");
    assert.equal(final.message.tool_calls, undefined);

    const refused = await post(`${up.url}/api/chat`, {
      model: "no-tools-support",
      messages: ask,
      tools: [WEATHER_TOOL],
    });
    assert.equal(refused.status, 400);
    assert.deepEqual(await refused.json(), {
      error: "registry.ollama.ai/library/no-tools-support:latest does not support tools",
    });
  } finally {
    await up.close();
  }
});

Deno.test("ollama: midstream error line and status-<code>", async () => {
  const up = startFakeOllama();
  try {
    const lines = await ndjson(
      await post(`${up.url}/api/chat`, {
        model: "midstream-error",
        messages: [{ role: "user", content: "x" }],
      }),
    );
    assert.equal(lines.length, 3);
    assert.equal(lines[1]!.done, false);
    assert.equal(typeof lines[2]!.error, "string");
    const res = await post(`${up.url}/api/chat`, {
      model: "status-503",
      messages: [{ role: "user", content: "x" }],
    });
    assert.equal(res.status, 503);
    assert.equal(typeof (await res.json()).error, "string");
  } finally {
    await up.close();
  }
});

Deno.test("ollama: /v1/chat/completions SSE chunks are valid OpenAI chunks", async () => {
  const up = startFakeOllama();
  try {
    const res = await post(`${up.url}/v1/chat/completions`, {
      model: "echo",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "say this is a test" }],
    });
    const { data } = await sse(res);
    assert.equal(data.at(-1), "[DONE]");
    const chunks = chunksOf(data);
    for (const c of chunks) validateSchema("CreateChatCompletionStreamResponse", c);
    assert.equal(deltaText(chunks), "say this is a test");
    assert.deepEqual(chunks.at(-1)!.choices, []);
    assert.deepEqual(chunks.at(-1)!.usage, { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 });
    const tools = await (await post(`${up.url}/v1/chat/completions`, {
      model: "tools-parallel",
      messages: [{ role: "user", content: "weather?" }],
      tools: [WEATHER_TOOL],
    })).json();
    assert.equal(tools.choices[0].finish_reason, "tool_calls");
    assert.equal(tools.choices[0].message.tool_calls.length, 2);
    assert.equal(tools.choices[0].message.tool_calls[1].function.arguments, '{"city":"city-2"}');
    const missing = await post(`${up.url}/v1/chat/completions`, { model: "nope", messages: [] });
    assert.equal(missing.status, 404);
    validateSchema("ErrorResponse", await missing.json());
  } finally {
    await up.close();
  }
});

// ── OpenAI / OpenRouter ────────────────────────────────────────────────────────

Deno.test("openai: JSON completion, models list, auth", async () => {
  const up = startFakeOpenAI({ apiKey: "sk-test" });
  const auth = { authorization: "Bearer sk-test" };
  try {
    assert.equal(up.baseUrl, `${up.url}/v1`);
    const res = await post(`${up.baseUrl}/chat/completions`, {
      model: "openai/gpt-4o-mini",
      messages: [{ role: "user", content: "hi there" }],
    }, auth);
    const body = await res.json();
    validateSchema("CreateChatCompletionResponse", body);
    assert.match(body.id, /^chatcmpl-/);
    assert.equal(body.choices[0].message.content, "hi there");
    assert.deepEqual([body.usage.prompt_tokens, body.usage.completion_tokens, body.usage.total_tokens], [
      2,
      2,
      4,
    ]);

    const models = await (await fetch(`${up.baseUrl}/models`, { headers: auth })).json();
    validateSchema("ListModelsResponse", models);
    const ids = models.data.map((m: Obj) => m.id);
    for (
      const id of ["openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet", "meta-llama/llama-3.1-8b-instruct"]
    ) {
      assert.ok(ids.includes(id), id);
    }

    for (const headers of [{}, { authorization: "Bearer wrong" }] as Record<string, string>[]) {
      const denied = await post(`${up.baseUrl}/chat/completions`, { model: "echo", messages: [] }, headers);
      assert.equal(denied.status, 401);
      validateSchema("ErrorResponse", await denied.json());
    }
    const unknown = await post(`${up.baseUrl}/chat/completions`, { model: "nope", messages: [] }, auth);
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error.code, "model_not_found");
  } finally {
    await up.close();
  }
});

Deno.test("openai: SSE chunks validate; include_usage adds a choices:[] usage chunk", async () => {
  const up = startFakeOpenAI();
  try {
    const res = await post(`${up.baseUrl}/chat/completions`, {
      model: "echo",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "one two three" }],
    });
    const { comments, data } = await sse(res);
    assert.deepEqual(comments, []);
    assert.equal(data.at(-1), "[DONE]");
    const chunks = chunksOf(data);
    for (const c of chunks) validateSchema("CreateChatCompletionStreamResponse", c);
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
    assert.equal(deltaText(chunks), "one two three");
    assert.deepEqual(((chunks[0]!.choices as Obj[])[0]!.delta as Obj).role, "assistant");
    assert.equal((chunks.at(-2)!.choices as Obj[])[0]!.finish_reason, "stop");
    assert.deepEqual(chunks.at(-1)!.choices, []);
    assert.equal((chunks.at(-1)!.usage as Obj).total_tokens, 6);

    const plain = await sse(
      await post(`${up.baseUrl}/chat/completions`, { model: "tokens-3", stream: true, messages: [] }),
    );
    assert.ok(chunksOf(plain.data).every((c) => !("usage" in c)), "no usage without include_usage");
  } finally {
    await up.close();
  }
});

Deno.test("openai: tools-parallel streams OpenAI tool-call deltas", async () => {
  const up = startFakeOpenAI();
  try {
    const res = await post(`${up.baseUrl}/chat/completions`, {
      model: "tools-parallel",
      stream: true,
      messages: [{ role: "user", content: "weather?" }],
      tools: [WEATHER_TOOL],
    });
    const chunks = chunksOf((await sse(res)).data);
    const calls: { id?: string; name?: string; args: string }[] = [];
    for (const c of chunks) {
      validateSchema("CreateChatCompletionStreamResponse", c);
      const delta = (c.choices as Obj[])[0]!.delta as {
        tool_calls?: { index: number; id?: string; function?: Obj }[];
      };
      for (const tc of delta.tool_calls ?? []) {
        const slot = calls[tc.index] ??= { args: "" };
        if (tc.id) slot.id = tc.id;
        if (typeof tc.function?.name === "string") slot.name = tc.function.name;
        slot.args += (tc.function?.arguments as string | undefined) ?? "";
      }
    }
    assert.equal(calls.length, 2);
    assert.ok(chunks.length > 4, "arguments arrive in fragments");
    assert.deepEqual(calls.map((c) => [c.name, JSON.parse(c.args)]), [
      ["get_weather", { city: "city-1" }],
      ["get_weather", { city: "city-2" }],
    ]);
    assert.ok(calls.every((c) => c.id?.startsWith("call_")));
    assert.equal((chunks.at(-1)!.choices as Obj[])[0]!.finish_reason, "tool_calls");
  } finally {
    await up.close();
  }
});

Deno.test("openai: status-<code> errors and midstream error", async () => {
  const up = startFakeOpenAI();
  try {
    for (const code of [400, 401, 402, 429, 500, 502, 503]) {
      const res = await post(`${up.baseUrl}/chat/completions`, { model: `status-${code}`, messages: [] });
      assert.equal(res.status, code);
      validateSchema("ErrorResponse", await res.json());
      assert.equal(res.headers.get("retry-after"), code === 429 ? "1" : null);
    }
    const { data } = await sse(
      await post(`${up.baseUrl}/chat/completions`, { model: "midstream-error", stream: true, messages: [] }),
    );
    assert.notEqual(data.at(-1), "[DONE]");
    const last = JSON.parse(data.at(-1)!);
    validateSchema("ErrorResponse", last);
  } finally {
    await up.close();
  }
});

Deno.test("openrouter: paths, processing comments, cost, models and error shapes", async () => {
  const up = startFakeOpenAI({ openrouter: true, apiKey: "or-key" });
  const auth = { authorization: "Bearer or-key" };
  try {
    assert.equal(up.baseUrl, `${up.url}/api/v1`);
    const res = await post(`${up.baseUrl}/chat/completions`, {
      model: "anthropic/claude-3.5-sonnet",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "a b c d" }],
    }, auth);
    const { comments, data } = await sse(res);
    assert.ok(comments.includes(": OPENROUTER PROCESSING"));
    const chunks = chunksOf(data);
    for (const c of chunks) validateSchema("CreateChatCompletionStreamResponse", c);
    const usage = chunks.at(-1)!.usage as Obj;
    assert.equal(usage.cost, 4 * 0.000003 + 4 * 0.000015);

    const models = await (await fetch(`${up.baseUrl}/models`)).json();
    assert.equal(models.total_count, models.data.length);
    const sonnet = models.data.find((m: Obj) => m.id === "anthropic/claude-3.5-sonnet");
    assert.equal(sonnet.context_length, 200000);
    assert.deepEqual([typeof sonnet.pricing.prompt, typeof sonnet.pricing.completion], ["string", "string"]);
    assert.equal(typeof sonnet.name, "string");

    const poor = await post(`${up.baseUrl}/chat/completions`, { model: "status-402", messages: [] }, auth);
    assert.equal(poor.status, 402);
    const err = await poor.json();
    assert.equal(err.error.code, 402);
    assert.equal(typeof err.error.message, "string");
    assert.equal(
      (await post(`${up.baseUrl}/chat/completions`, { model: "x/y", messages: [] }, auth).then((r) =>
        r.json()
      )).error.code,
      400,
    );
    assert.equal((await post(`${up.baseUrl}/chat/completions`, { model: "echo", messages: [] })).status, 401);
    const notThere = await fetch(`${up.url}/v1/models`);
    assert.equal(notThere.status, 404);
    await notThere.body?.cancel();

    const mid = await sse(
      await post(
        `${up.baseUrl}/chat/completions`,
        { model: "midstream-error", stream: true, messages: [] },
        auth,
      ),
    );
    const errChunk = JSON.parse(mid.data.at(-1)!);
    assert.equal(errChunk.error.code, 502);
    assert.equal(errChunk.choices[0].finish_reason, "error");
  } finally {
    await up.close();
  }
});

Deno.test("slow, hang, record:false and close() with streams in flight", async () => {
  const up = startFakeOpenAI({ record: false, slowDelayMs: 30 });
  try {
    const t0 = performance.now();
    const slow = await sse(
      await post(`${up.baseUrl}/chat/completions`, {
        model: "slow",
        stream: true,
        messages: [{ role: "user", content: "a b c" }],
      }),
    );
    assert.ok(performance.now() - t0 >= 90, "slow waits between chunks");
    assert.equal(deltaText(chunksOf(slow.data)), "a b c");
    const hung = fetch(`${up.baseUrl}/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "hang", messages: [] }),
      signal: AbortSignal.timeout(50),
    });
    await assert.rejects(hung, (e: unknown) => e instanceof DOMException && e.name === "TimeoutError");
    assert.equal(up.requests.length, 0);
  } finally {
    await up.close();
  }
  // A streaming request still running when close() is called ends promptly.
  const up2 = startFakeOllama({ slowDelayMs: 10_000 });
  const res = await post(`${up2.url}/api/chat`, {
    model: "slow",
    messages: [{ role: "user", content: "a b c" }],
  });
  const t1 = performance.now();
  const [text] = await Promise.all([res.text(), up2.close()]);
  assert.ok(performance.now() - t1 < 2000);
  assert.ok(text.length > 0);
});
