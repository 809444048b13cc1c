/**
 * End-to-end chat completions through a real llmgw server on loopback, with the
 * official `openai` SDK as the client and fake Ollama / OpenRouter upstreams. Every
 * body and chunk the SDK sees is validated against the official OpenAI schemas.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import type { ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources";
import { startHarness } from "../harness.ts";
import { validateSchema } from "../schemas/validate.ts";

const TOOLS: ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Weather in a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  },
  {
    type: "function",
    function: {
      name: "get_time",
      description: "Time in a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  },
];

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const out: ChatCompletionChunk[] = [];
  for await (const c of stream) {
    validateSchema("CreateChatCompletionStreamResponse", c);
    out.push(c);
  }
  return out;
}

Deno.test("non-streaming chat through Ollama matches OpenAI's response schema", async () => {
  const h = await startHarness();
  try {
    const { data, response } = await h.client().chat.completions.create({
      model: "ollama/llama3.2",
      messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hello there world" }],
    }).withResponse();
    validateSchema("CreateChatCompletionResponse", data);
    assert.equal(data.object, "chat.completion");
    assert.equal(data.model, "ollama/llama3.2");
    assert.match(data.id, /^chatcmpl-/);
    assert.equal(data.choices[0]!.message.content, "hello there world");
    assert.equal(data.choices[0]!.finish_reason, "stop");
    assert.ok(data.usage!.prompt_tokens > 0);
    assert.equal(data.usage!.total_tokens, data.usage!.prompt_tokens + data.usage!.completion_tokens);
    assert.match(response.headers.get("x-request-id") ?? "", /^req_/);
    const sent = h.ollama.requests.find((r) => r.path === "/api/chat")!.body as Record<string, unknown>;
    assert.equal(sent.model, "llama3.2");
    assert.equal(sent.stream, false);
  } finally {
    await h.close();
  }
});

Deno.test("streaming chat through Ollama: role first, content deltas, finish, usage chunk, [DONE]", async () => {
  const h = await startHarness();
  try {
    const stream = await h.client().chat.completions.create({
      model: "llama3.2",
      messages: [{ role: "user", content: "one two three four" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = await collect(stream);
    assert.equal(chunks[0]!.choices[0]!.delta.role, "assistant");
    const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? "")).join("");
    assert.equal(text, "one two three four");
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(finish.length, 1);
    assert.equal(finish[0]!.choices[0]!.finish_reason, "stop");
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage && last.usage.completion_tokens > 0);
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  } finally {
    await h.close();
  }
});

Deno.test("streaming without include_usage sends no usage chunk", async () => {
  const h = await startHarness();
  try {
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "llama3.2", stream: true, messages: [{ role: "user", content: "a b" }] }),
    });
    assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const text = await res.text();
    const events = text.split("\n\n").filter(Boolean);
    assert.equal(events.at(-1), "data: [DONE]");
    for (const e of events.slice(0, -1)) {
      const chunk = JSON.parse(e.replace(/^data: /, ""));
      validateSchema("CreateChatCompletionStreamResponse", chunk);
      assert.ok(chunk.choices.length > 0);
      assert.equal("usage" in chunk, false);
    }
  } finally {
    await h.close();
  }
});

Deno.test("parallel tool calls round-trip through Ollama (non-streaming)", async () => {
  const h = await startHarness();
  try {
    const client = h.client();
    const messages: ChatCompletionMessageParam[] = [{ role: "user", content: "weather and time in Paris?" }];
    const first = await client.chat.completions.create({ model: "tools-parallel", messages, tools: TOOLS });
    validateSchema("CreateChatCompletionResponse", first);
    const msg = first.choices[0]!.message;
    assert.equal(first.choices[0]!.finish_reason, "tool_calls");
    assert.equal(msg.content, null);
    assert.equal(msg.tool_calls?.length, 2);
    const calls = msg.tool_calls!.filter((c) => c.type === "function");
    assert.deepEqual(calls.map((c) => c.function.name), ["get_weather", "get_time"]);
    for (const c of calls) {
      assert.match(c.id, /^call_/);
      assert.equal(typeof JSON.parse(c.function.arguments).city, "string");
    }
    messages.push(msg);
    for (const c of calls) {
      messages.push({ role: "tool", tool_call_id: c.id, content: `${c.function.name} result` });
    }
    const second = await client.chat.completions.create({ model: "tools-parallel", messages, tools: TOOLS });
    validateSchema("CreateChatCompletionResponse", second);
    assert.equal(second.choices[0]!.finish_reason, "stop");
    assert.match(second.choices[0]!.message.content!, /get_weather result.*get_time result/);
    // What Ollama received: arguments as objects, tool results with tool_name.
    const sent = h.ollama.requests.filter((r) => r.path === "/api/chat").at(-1)!.body as {
      messages: { role: string; tool_name?: string; tool_calls?: { function: { arguments: unknown } }[] }[];
    };
    const assistant = sent.messages.find((m) => m.role === "assistant")!;
    assert.equal(typeof assistant.tool_calls![0]!.function.arguments, "object");
    assert.deepEqual(sent.messages.filter((m) => m.role === "tool").map((m) => m.tool_name), [
      "get_weather",
      "get_time",
    ]);
  } finally {
    await h.close();
  }
});

Deno.test("parallel tool calls stream as OpenAI tool-call deltas (index, id, name, then arguments)", async () => {
  const h = await startHarness();
  try {
    const chunks = await collect(
      await h.client().chat.completions.create({
        model: "tools-parallel",
        messages: [{ role: "user", content: "weather and time?" }],
        tools: TOOLS,
        stream: true,
      }),
    );
    const calls = new Map<number, { id?: string; name?: string; args: string }>();
    for (const c of chunks) {
      for (const tc of c.choices[0]?.delta.tool_calls ?? []) {
        const cur = calls.get(tc.index) ?? { args: "" };
        if (tc.id) {
          assert.equal(cur.id, undefined, "id comes once");
          assert.equal(tc.type, "function");
          cur.id = tc.id;
          cur.name = tc.function?.name;
        } else assert.ok(cur.id, "arguments come after the id");
        cur.args += tc.function?.arguments ?? "";
        calls.set(tc.index, cur);
      }
    }
    assert.deepEqual([...calls.keys()], [0, 1]);
    for (const c of calls.values()) {
      assert.match(c.id!, /^call_/);
      assert.equal(typeof JSON.parse(c.args), "object");
    }
    assert.equal(chunks.find((c) => c.choices[0]?.finish_reason)!.choices[0]!.finish_reason, "tool_calls");
  } finally {
    await h.close();
  }
});

Deno.test("tool calls that come with ids keep them", async () => {
  const h = await startHarness();
  try {
    const r = await h.client().chat.completions.create({
      model: "tools-with-id",
      messages: [{ role: "user", content: "weather?" }],
      tools: TOOLS,
    });
    const call = r.choices[0]!.message.tool_calls![0]!;
    const recorded = h.ollama.requests.length > 0;
    assert.ok(recorded);
    assert.ok(call.id.length > 0);
    assert.doesNotMatch(call.id, /^call_[A-Za-z0-9]{24}$/, "the upstream id is kept, not replaced");
  } finally {
    await h.close();
  }
});

Deno.test("OpenRouter models stream with comment lines skipped and usage.cost kept", async () => {
  const h = await startHarness();
  try {
    const client = h.client();
    const chunks = await collect(
      await client.chat.completions.create({
        model: "openrouter/openai/gpt-4o-mini",
        messages: [{ role: "user", content: "hi from the test" }],
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    assert.equal(
      chunks.flatMap((c) => c.choices.map((x) => x.delta.content ?? "")).join(""),
      "hi from the test",
    );
    const usage = chunks.at(-1)!.usage as unknown as { cost: number };
    assert.equal(typeof usage.cost, "number");
    const sent = h.openrouter.requests.at(-1)!;
    assert.equal(sent.headers["authorization"], "Bearer sk-or-test-upstream-key-0000000000");
    assert.equal((sent.body as { model: string }).model, "openai/gpt-4o-mini");
    // A bare OpenRouter id is found through OpenRouter's model list.
    const r = await client.chat.completions.create({
      model: "anthropic/claude-3.5-sonnet",
      messages: [{ role: "user", content: "bare id" }],
    });
    validateSchema("CreateChatCompletionResponse", r);
    assert.equal(r.model, "anthropic/claude-3.5-sonnet");
  } finally {
    await h.close();
  }
});

Deno.test("n > 1 on Ollama is emulated with n upstream calls", async () => {
  const h = await startHarness();
  try {
    const r = await h.client().chat.completions.create({
      model: "llama3.2",
      n: 3,
      messages: [{ role: "user", content: "x y" }],
    });
    validateSchema("CreateChatCompletionResponse", r);
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    assert.equal(h.ollama.requests.filter((x) => x.path === "/api/chat").length, 3);
    const chunks = await collect(
      await h.client().chat.completions.create({
        model: "llama3.2",
        n: 2,
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: "p q" }],
      }),
    );
    for (const i of [0, 1]) {
      const text = chunks.flatMap((c) =>
        c.choices.filter((x) => x.index === i).map((x) => x.delta.content ?? "")
      );
      assert.equal(text.join(""), "p q");
    }
  } finally {
    await h.close();
  }
});

Deno.test("n > 1 on OpenRouter is emulated; web_search_options becomes the web plugin", async () => {
  const h = await startHarness();
  try {
    const r = await h.client().chat.completions.create({
      model: "openrouter/openai/gpt-4o-mini",
      n: 2,
      messages: [{ role: "user", content: "two answers" }],
    });
    validateSchema("CreateChatCompletionResponse", r);
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    const sent = h.openrouter.requests.filter((x) => x.path.endsWith("/chat/completions"));
    assert.equal(sent.length, 2);
    for (const s of sent) assert.equal((s.body as { n?: number }).n, undefined);
    const chunks = await collect(
      await h.client().chat.completions.create({
        model: "openrouter/openai/gpt-4o-mini",
        n: 2,
        stream: true,
        stream_options: { include_usage: true },
        web_search_options: {},
        messages: [{ role: "user", content: "streamed pair" }],
      }),
    );
    for (const i of [0, 1]) {
      const text = chunks.flatMap((c) =>
        c.choices.filter((x) => x.index === i).map((x) => x.delta.content ?? "")
      );
      assert.equal(text.join(""), "streamed pair");
    }
    assert.equal(chunks.filter((c) => c.choices.length === 0).length, 1, "one summed usage chunk");
    const last = h.openrouter.requests.at(-1)!.body as Record<string, unknown>;
    assert.deepEqual(last.plugins, [{ id: "web" }]);
    assert.equal("web_search_options" in last, false);
  } finally {
    await h.close();
  }
});

Deno.test("parameters are translated for Ollama (max_tokens, stop, seed, response_format)", async () => {
  const h = await startHarness();
  try {
    const r = await h.client().chat.completions.create({
      model: "json",
      messages: [{ role: "user", content: "give json" }],
      max_tokens: 50,
      stop: "END",
      seed: 7,
      temperature: 0.2,
      top_p: 0.9,
      presence_penalty: 0.5,
      response_format: {
        type: "json_schema",
        json_schema: { name: "x", schema: { type: "object", properties: { a: { type: "number" } } } },
      },
    });
    validateSchema("CreateChatCompletionResponse", r);
    const sent = h.ollama.requests.at(-1)!.body as { options: Record<string, unknown>; format: unknown };
    assert.deepEqual(sent.options, {
      num_predict: 50,
      stop: ["END"],
      seed: 7,
      temperature: 0.2,
      top_p: 0.9,
      presence_penalty: 0.5,
    });
    assert.deepEqual(sent.format, { type: "object", properties: { a: { type: "number" } } });
    const len = await h.client().chat.completions.create({
      model: "llama3.2",
      messages: [{ role: "user", content: "a b c d e f" }],
      max_completion_tokens: 2,
    });
    assert.equal(len.choices[0]!.finish_reason, "length");
  } finally {
    await h.close();
  }
});

Deno.test("thinking becomes reasoning_content", async () => {
  const h = await startHarness();
  try {
    const r = await h.client().chat.completions.create({
      model: "thinking",
      messages: [{ role: "user", content: "ponder" }],
    });
    validateSchema("CreateChatCompletionResponse", r);
    const msg = r.choices[0]!.message as unknown as { reasoning_content: string; content: string };
    assert.equal(msg.reasoning_content, "Let me think about that.");
    assert.equal(msg.content, "ponder");
  } finally {
    await h.close();
  }
});

Deno.test("the official SDK raises its matching error classes", async () => {
  const h = await startHarness();
  try {
    const client = h.client();
    const cases: [string, Record<string, unknown>, new (...a: never[]) => Error, number, string | null][] = [
      ["unknown model", { model: "no-such-model" }, OpenAI.NotFoundError, 404, "model_not_found"],
      [
        "unknown model on Ollama itself",
        { model: "ollama/does-not-exist" },
        OpenAI.NotFoundError,
        404,
        "model_not_found",
      ],
      [
        "upstream 404 on OpenRouter",
        { model: "openrouter/status-404" },
        OpenAI.NotFoundError,
        404,
        "model_not_found",
      ],
      [
        "temperature out of range",
        { model: "llama3.2", temperature: 5 },
        OpenAI.BadRequestError,
        400,
        "temperature",
      ],
      [
        "tool_choice required on Ollama",
        {
          model: "llama3.2",
          tools: TOOLS,
          tool_choice: "required",
        },
        OpenAI.BadRequestError,
        400,
        "tool_choice",
      ],
      [
        "model without tool support",
        { model: "no-tools-support", tools: TOOLS },
        OpenAI.BadRequestError,
        400,
        "tools",
      ],
      [
        "logit_bias on Ollama",
        { model: "llama3.2", logit_bias: { "50256": -100 } },
        OpenAI.BadRequestError,
        400,
        "logit_bias",
      ],
      [
        "legacy functions on OpenRouter",
        {
          model: "openrouter/openai/gpt-4o-mini",
          functions: [{ name: "f", parameters: { type: "object" } }],
        },
        OpenAI.BadRequestError,
        400,
        "functions",
      ],
      ["upstream 429", { model: "openrouter/status-429" }, OpenAI.RateLimitError, 429, null],
      ["upstream 500", { model: "openrouter/status-500" }, OpenAI.InternalServerError, 502, null],
      ["upstream 503", { model: "openrouter/status-503" }, OpenAI.InternalServerError, 503, null],
      ["upstream 400", { model: "openrouter/status-400" }, OpenAI.BadRequestError, 400, null],
    ];
    for (const [what, extra, cls, status, paramOrCode] of cases) {
      const err = await client.chat.completions.create({
        messages: [{ role: "user", content: "hi" }],
        ...extra,
      } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming).then(() => null, (e) => e);
      assert.ok(err instanceof cls, `${what}: got ${err}`);
      const apiErr = err as InstanceType<typeof OpenAI.APIError>;
      assert.equal(apiErr.status, status, what);
      validateSchema("ErrorResponse", { error: apiErr.error });
      if (paramOrCode) {
        assert.ok(apiErr.param === paramOrCode || apiErr.code === paramOrCode, `${what}: ${apiErr.message}`);
      }
      assert.ok(apiErr.requestID, `${what}: x-request-id`);
    }
  } finally {
    await h.close();
  }
});

Deno.test("a mid-stream upstream error reaches the SDK as an APIError in the stream", async () => {
  const h = await startHarness();
  try {
    for (const model of ["midstream-error", "openrouter/midstream-error"]) {
      const stream = await h.client().chat.completions.create({
        model,
        messages: [{ role: "user", content: "go on and on and on" }],
        stream: true,
      });
      const seen: ChatCompletionChunk[] = [];
      const err = await (async () => {
        for await (const c of stream) seen.push(c);
      })().then(() => null, (e) => e);
      assert.ok(err instanceof OpenAI.APIError, `${model}: ${err}`);
      assert.ok(seen.length > 0, `${model}: chunks before the error`);
    }
    // On the wire: the error event, then [DONE].
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({
        model: "midstream-error",
        stream: true,
        messages: [{ role: "user", content: "a b c" }],
      }),
    });
    const events = (await res.text()).split("\n\n").filter(Boolean);
    assert.equal(events.at(-1), "data: [DONE]");
    const errEvent = JSON.parse(events.at(-2)!.replace(/^data: /, ""));
    validateSchema("ErrorResponse", errEvent);
  } finally {
    await h.close();
  }
});

Deno.test("models are listed in OpenAI's format, merged across providers", async () => {
  const h = await startHarness({ file: { aliases: { fast: "ollama/llama3.2" } } });
  try {
    const client = h.client();
    const page = await client.models.list();
    validateSchema("ListModelsResponse", { object: "list", data: page.data });
    const ids = page.data.map((m) => m.id);
    assert.ok(ids.includes("fast"));
    assert.ok(ids.includes("llama3.2:latest"));
    assert.ok(ids.includes("openai/gpt-4o-mini"));
    const one = await client.models.retrieve("openai/gpt-4o-mini");
    validateSchema("Model", one);
    const prefixed = await client.models.retrieve("ollama/llama3.2");
    validateSchema("Model", prefixed);
    const missing = await client.models.retrieve("nope").then(() => null, (e) => e);
    assert.ok(missing instanceof OpenAI.NotFoundError);
    const viaAlias = await client.chat.completions.create({
      model: "fast",
      messages: [{ role: "user", content: "z" }],
    });
    assert.equal(viaAlias.model, "fast");
  } finally {
    await h.close();
  }
});
