/**
 * Unit tests for the OpenAI ⇄ Ollama translation (core/providers/ollama_wire.ts) and
 * the parameter table enforcement (core/providers/params.ts). Pure functions only.
 */
import assert from "node:assert/strict";
import { GatewayError, InvalidRequestError, UnsupportedParameterError } from "../../core/errors.ts";
import type { ChatCompletionChunk, ChatCompletionRequest, ChatMessage } from "../../core/protocol.ts";
import { ChatCompletionRequest as RequestSchema } from "../../core/protocol.ts";
import { enforceParams, maxTokensOf, stopList } from "../../core/providers/params.ts";
import {
  OLLAMA_PARAMS,
  type OllamaCallShape,
  OllamaChunkTranslator,
  toChoiceMessage,
  toOllamaMessages,
  toOllamaRequest,
  usageOf,
} from "../../core/providers/ollama_wire.ts";

const USER: ChatMessage[] = [{ role: "user", content: "hi" }];
const SHAPE: OllamaCallShape = { parallelToolCalls: true, legacyFunctions: false };

/** A request as the gateway sees it after validation. */
function req(fields: Record<string, unknown>): ChatCompletionRequest {
  return RequestSchema.parse({ model: "m", messages: USER, ...fields });
}

function assertUnsupported(fn: () => unknown, param: string): UnsupportedParameterError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof UnsupportedParameterError, `expected UnsupportedParameterError, got ${caught}`);
  assert.equal(caught.status, 400);
  assert.equal(caught.code, "unsupported_parameter");
  assert.equal(caught.type, "invalid_request_error");
  assert.equal(caught.param, param);
  assert.match(caught.message, new RegExp(`'${param.replace(/[[\].]/g, "\\$&")}'.*'ollama'`));
  return caught;
}

// ── Messages ───────────────────────────────────────────────────────────────────

Deno.test("toOllamaMessages: system and developer become system; text parts joined", () => {
  const out = toOllamaMessages([
    { role: "system", content: "be brief" },
    { role: "developer", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] },
    { role: "user", content: [{ type: "text", text: "one" }, { type: "text", text: "two" }] },
    { role: "user", content: "plain" },
  ]);
  assert.deepEqual(out, [
    { role: "system", content: "be brief" },
    { role: "system", content: "a\nb" },
    { role: "user", content: "one\ntwo" },
    { role: "user", content: "plain" },
  ]);
  assert.ok(!("images" in out[2]!), "no images key without images");
});

Deno.test("toOllamaMessages: data-URL images become base64 images", () => {
  const out = toOllamaMessages([{
    role: "user",
    content: [
      { type: "text", text: "what is this?" },
      { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
      { type: "image_url", image_url: { url: "data:image/jpeg;base64,/9j/4AAQ", detail: "low" } },
    ],
  }]);
  assert.deepEqual(out, [{ role: "user", content: "what is this?", images: ["iVBORw0KGgo=", "/9j/4AAQ"] }]);
  // Image only: empty text, images kept.
  const only = toOllamaMessages([{
    role: "user",
    content: [{ type: "image_url", image_url: { url: "data:image/gif;base64,R0lG" } }],
  }]);
  assert.deepEqual(only, [{ role: "user", content: "", images: ["R0lG"] }]);
});

Deno.test("toOllamaMessages: non-data or non-base64 image URLs are rejected with the param path", () => {
  const img = (url: string): ChatMessage[] => [
    { role: "user", content: "first" },
    { role: "assistant", content: "ok" },
    {
      role: "user",
      content: [{ type: "text", text: "look" }, { type: "image_url", image_url: { url } }],
    },
  ];
  for (
    const url of [
      "https://example.com/cat.png",
      "data:image/png,rawbytes", // not base64
      "data:image/png;base64", // no comma
      "ftp://example.com/cat.png",
    ]
  ) {
    const err = assertUnsupported(() => toOllamaMessages(img(url)), "messages[2].content[1].image_url.url");
    assert.match(err.message, /base64 data URLs/);
  }
});

Deno.test("toOllamaMessages: audio and file parts are rejected naming the part's type", () => {
  assertUnsupported(
    () =>
      toOllamaMessages([{
        role: "user",
        content: [{ type: "text", text: "x" }, {
          type: "input_audio",
          input_audio: { data: "AA", format: "wav" },
        }],
      }]),
    "messages[0].content[1].type",
  );
  assertUnsupported(
    () =>
      toOllamaMessages([
        ...USER,
        { role: "user", content: [{ type: "file", file: { file_id: "f" } }] },
      ]),
    "messages[1].content[0].type",
  );
});

Deno.test("toOllamaMessages: assistant tool_calls → argument objects; tool results get tool_name", () => {
  const out = toOllamaMessages([
    { role: "user", content: "weather in Paris and time in Tokyo?" },
    {
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        { id: "call_b", type: "function", function: { name: "get_time", arguments: "" } },
        { id: "call_c", type: "function", function: { name: "nested", arguments: '{"a":[1,{"b":null}]}' } },
      ],
    },
    { role: "tool", tool_call_id: "call_b", content: "09:00" },
    { role: "tool", tool_call_id: "call_a", content: [{ type: "text", text: "sunny" }] },
    { role: "tool", tool_call_id: "call_unknown", content: "orphan" },
  ]);
  assert.deepEqual(out[1], {
    role: "assistant",
    content: "",
    tool_calls: [
      { function: { name: "get_weather", arguments: { city: "Paris" } } },
      { function: { name: "get_time", arguments: {} } },
      { function: { name: "nested", arguments: { a: [1, { b: null }] } } },
    ],
  });
  assert.deepEqual(out[2], { role: "tool", content: "09:00", tool_name: "get_time" });
  assert.deepEqual(out[3], { role: "tool", content: "sunny", tool_name: "get_weather" });
  assert.deepEqual(out[4], { role: "tool", content: "orphan" });
});

Deno.test("toOllamaMessages: a tool result before its call gets no tool_name", () => {
  const out = toOllamaMessages([
    { role: "tool", tool_call_id: "call_x", content: "early" },
    {
      role: "assistant",
      tool_calls: [{ id: "call_x", type: "function", function: { name: "f", arguments: "{}" } }],
    },
  ]);
  assert.deepEqual(out[0], { role: "tool", content: "early" });
});

Deno.test("toOllamaMessages: malformed tool-call arguments → 400 naming the path", () => {
  let caught: unknown;
  try {
    toOllamaMessages([
      ...USER,
      {
        role: "assistant",
        tool_calls: [
          { id: "c1", type: "function", function: { name: "f", arguments: "{}" } },
          { id: "c2", type: "function", function: { name: "g", arguments: "{not json" } },
        ],
      },
    ]);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof InvalidRequestError);
  assert.equal(caught.status, 400);
  assert.equal(caught.param, "messages[1].tool_calls[1].function.arguments");
});

Deno.test("toOllamaMessages: custom tool calls in history are rejected", () => {
  assertUnsupported(
    () =>
      toOllamaMessages([
        ...USER,
        { role: "assistant", tool_calls: [{ id: "c", type: "custom", custom: { name: "x", input: "y" } }] },
      ]),
    "messages[1].tool_calls[0]",
  );
});

Deno.test("toOllamaMessages: legacy function_call and function role", () => {
  const out = toOllamaMessages([
    ...USER,
    { role: "assistant", content: null, function_call: { name: "lookup", arguments: '{"q":"x"}' } },
    { role: "function", name: "lookup", content: "found" },
    { role: "function", name: "lookup", content: null },
  ]);
  assert.deepEqual(out.slice(1), [
    { role: "assistant", content: "", tool_calls: [{ function: { name: "lookup", arguments: { q: "x" } } }] },
    { role: "tool", content: "found", tool_name: "lookup" },
    { role: "tool", content: "", tool_name: "lookup" },
  ]);
});

Deno.test("toOllamaMessages: reasoning_content → thinking; assistant text parts", () => {
  const out = toOllamaMessages([
    ...USER,
    { role: "assistant", content: "42", reasoning_content: "let me think" },
    { role: "assistant", content: [{ type: "text", text: "a" }, { type: "refusal", refusal: "no" }] },
    { role: "assistant", content: "x", reasoning_content: null },
  ]);
  assert.deepEqual(out[1], { role: "assistant", content: "42", thinking: "let me think" });
  assert.equal(out[2]!.content, "a");
  assert.ok(!("thinking" in out[3]!));
});

// ── Requests ───────────────────────────────────────────────────────────────────

Deno.test("toOllamaRequest: minimal request has no options, tools or format", () => {
  const { body, shape } = toOllamaRequest(req({}), "llama3.2:latest", false);
  assert.deepEqual(body, {
    model: "llama3.2:latest",
    messages: [{ role: "user", content: "hi" }],
    stream: false,
  });
  assert.deepEqual(shape, { parallelToolCalls: true, legacyFunctions: false });
  assert.equal(toOllamaRequest(req({}), "m", true).body.stream, true);
});

Deno.test("toOllamaRequest: sampling parameters go into options", () => {
  const { body } = toOllamaRequest(
    req({
      max_tokens: 10,
      max_completion_tokens: 20,
      stop: "END",
      seed: 7,
      temperature: 0,
      top_p: 0.5,
      frequency_penalty: -1.5,
      presence_penalty: 0.25,
    }),
    "m",
    false,
  );
  assert.deepEqual(body.options, {
    num_predict: 20,
    stop: ["END"],
    seed: 7,
    temperature: 0,
    top_p: 0.5,
    frequency_penalty: -1.5,
    presence_penalty: 0.25,
  });
  assert.deepEqual(toOllamaRequest(req({ max_tokens: 5, stop: ["a", "b"] }), "m", false).body.options, {
    num_predict: 5,
    stop: ["a", "b"],
  });
  // null values are "not set".
  assert.equal(
    toOllamaRequest(req({ temperature: null, max_tokens: null, stop: null }), "m", false).body.options,
    undefined,
  );
});

Deno.test("maxTokensOf and stopList", () => {
  assert.equal(maxTokensOf(req({ max_tokens: 3, max_completion_tokens: 9 })), 9);
  assert.equal(maxTokensOf(req({ max_tokens: 3 })), 3);
  assert.equal(maxTokensOf(req({ max_tokens: 3, max_completion_tokens: null })), 3);
  assert.equal(maxTokensOf(req({})), undefined);
  assert.deepEqual(stopList("x"), ["x"]);
  assert.deepEqual(stopList(["x", "y"]), ["x", "y"]);
  assert.equal(stopList(null), undefined);
  assert.equal(stopList(undefined), undefined);
});

Deno.test("toOllamaRequest: extra options merge (and win); keep_alive, think and format pass through", () => {
  const { body } = toOllamaRequest(
    req({ temperature: 1, options: { num_ctx: 8192, temperature: 0.1 }, keep_alive: "5m", think: true }),
    "m",
    false,
  );
  assert.deepEqual(body.options, { temperature: 0.1, num_ctx: 8192 });
  assert.equal(body.keep_alive, "5m");
  assert.equal(body.think, true);
  assert.equal(toOllamaRequest(req({ keep_alive: 0 }), "m", false).body.keep_alive, 0);
  assert.equal(
    toOllamaRequest(req({ think: false, reasoning_effort: "high" }), "m", false).body.think,
    false,
  );
  assert.equal(toOllamaRequest(req({ format: "json" }), "m", false).body.format, "json");
  // A non-object `options` is ignored rather than spread.
  assert.equal(toOllamaRequest(req({ options: "fast" }), "m", false).body.options, undefined);
});

Deno.test("toOllamaRequest: reasoning_effort → think", () => {
  const think = (effort: unknown) =>
    toOllamaRequest(req({ reasoning_effort: effort }), "m", false).body.think;
  assert.equal(think("none"), false);
  assert.equal(think("minimal"), "low");
  assert.equal(think("low"), "low");
  assert.equal(think("medium"), "medium");
  assert.equal(think("high"), "high");
  assert.equal(think("xhigh"), "high");
  assert.equal(think(null), undefined);
  assert.ok(!("think" in toOllamaRequest(req({}), "m", false).body));
  // NOTE: reasoning_effort "max" (accepted by the schema) is passed through as think: "max",
  // which Ollama does not accept (true/false/"low"/"medium"/"high"); reported, not asserted.
});

Deno.test("toOllamaRequest: response_format", () => {
  const fmt = (rf: unknown) => toOllamaRequest(req({ response_format: rf }), "m", false).body.format;
  assert.equal(fmt({ type: "json_object" }), "json");
  const schema = { type: "object", properties: { a: { type: "number" } }, required: ["a"] };
  assert.deepEqual(fmt({ type: "json_schema", json_schema: { name: "x", schema, strict: true } }), schema);
  assert.equal(fmt({ type: "json_schema", json_schema: { name: "x" } }), "json");
  assert.equal(fmt({ type: "text" }), undefined);
  // response_format wins over a raw `format` extra.
  assert.equal(
    toOllamaRequest(req({ response_format: { type: "json_object" }, format: { type: "object" } }), "m", false)
      .body.format,
    "json",
  );
});

const WEATHER_TOOL = {
  type: "function",
  function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: {} } },
};

Deno.test("toOllamaRequest: tools are translated; missing parameters default to an object schema", () => {
  const { body } = toOllamaRequest(
    req({ tools: [WEATHER_TOOL, { type: "function", function: { name: "noargs" } }], tool_choice: "auto" }),
    "m",
    false,
  );
  assert.deepEqual(body.tools, [
    WEATHER_TOOL,
    {
      type: "function",
      function: { name: "noargs", description: undefined, parameters: { type: "object" } },
    },
  ]);
  assert.equal(toOllamaRequest(req({ tools: [] }), "m", false).body.tools, undefined);
});

Deno.test("toOllamaRequest: tool_choice none drops the tools", () => {
  const { body } = toOllamaRequest(req({ tools: [WEATHER_TOOL], tool_choice: "none" }), "m", false);
  assert.equal(body.tools, undefined);
});

Deno.test("toOllamaRequest: custom tools are rejected with the tool's path", () => {
  assertUnsupported(
    () =>
      toOllamaRequest(
        req({ tools: [WEATHER_TOOL, { type: "custom", custom: { name: "grammar" } }] }),
        "m",
        false,
      ),
    "tools[1]",
  );
});

Deno.test("toOllamaRequest: legacy functions → tools and a legacy response shape", () => {
  const fn = { name: "lookup", description: "Find", parameters: { type: "object" } };
  const { body, shape } = toOllamaRequest(req({ functions: [fn], function_call: "auto" }), "m", false);
  assert.deepEqual(body.tools, [{ type: "function", function: fn }]);
  assert.deepEqual(shape, { parallelToolCalls: true, legacyFunctions: true });
  // function_call "none" drops them.
  assert.equal(
    toOllamaRequest(req({ functions: [fn], function_call: "none" }), "m", false).body.tools,
    undefined,
  );
  // tools and functions together: both are sent, the modern response shape is used.
  const both = toOllamaRequest(req({ functions: [fn], tools: [WEATHER_TOOL] }), "m", false);
  assert.equal(both.body.tools?.length, 2);
  assert.equal(both.shape.legacyFunctions, false);
  assert.equal(
    toOllamaRequest(req({ parallel_tool_calls: false }), "m", false).shape.parallelToolCalls,
    false,
  );
});

// ── Parameter table ────────────────────────────────────────────────────────────

Deno.test("OLLAMA_PARAMS: every official request field is declared (and extras are native)", () => {
  const schemaFields = Object.keys(RequestSchema.shape);
  const undeclared = schemaFields.filter((k) => !(k in OLLAMA_PARAMS));
  assert.deepEqual(undeclared, []);
  for (const k of ["options", "keep_alive", "think"]) assert.equal(OLLAMA_PARAMS[k]!.support, "native");
  for (const [k, rule] of Object.entries(OLLAMA_PARAMS)) {
    assert.ok(
      ["native", "translated", "emulated", "ignored", "rejected"].includes(rule.support),
      `${k}: ${rule.support}`,
    );
    if (rule.accept) assert.equal(rule.support, "rejected", `${k} has accept but is not rejected`);
  }
});

Deno.test("enforceParams: rejected parameters raise unsupported_parameter naming the param", () => {
  const cases: [string, Record<string, unknown>][] = [
    ["logit_bias", { logit_bias: { "50256": -100 } }],
    ["logprobs", { logprobs: true }],
    ["top_logprobs", { top_logprobs: 3 }],
    ["modalities", { modalities: ["text", "audio"] }],
    ["audio", { audio: { voice: "alloy", format: "wav" } }],
    ["verbosity", { verbosity: "low" }],
    ["web_search_options", { web_search_options: {} }],
    ["moderation", { moderation: true }],
    ["tool_choice", { tool_choice: "required" }],
    ["tool_choice", { tool_choice: { type: "function", function: { name: "get_weather" } } }],
    ["function_call", { function_call: { name: "lookup" } }],
  ];
  for (const [param, fields] of cases) {
    const err = assertUnsupported(() => enforceParams(req(fields), OLLAMA_PARAMS, "ollama"), param);
    assert.ok(err instanceof GatewayError);
    // The rule's note is part of the message.
    const note = OLLAMA_PARAMS[param]!.note;
    if (note) assert.ok(err.message.includes(note), err.message);
  }
});

Deno.test("enforceParams: harmless values, nulls and supported params pass", () => {
  const ok: Record<string, unknown>[] = [
    {},
    { logprobs: false },
    { logprobs: null },
    { modalities: ["text"] },
    { tool_choice: "auto" },
    { tool_choice: "none" },
    { function_call: "auto" },
    { function_call: "none" },
    { logit_bias: null, top_logprobs: null, audio: null },
    {
      n: 2,
      stop: "x",
      temperature: 1,
      seed: 1,
      user: "u",
      metadata: { a: "b" },
      store: true,
      service_tier: "auto",
      prediction: { type: "content", content: "x" },
      prompt_cache_key: "k",
      reasoning_effort: "low",
      parallel_tool_calls: false,
      response_format: { type: "json_object" },
      options: { num_ctx: 1 },
      keep_alive: "1m",
      think: true,
      stream: true,
      stream_options: { include_usage: true },
    },
  ];
  for (const fields of ok) enforceParams(req(fields), OLLAMA_PARAMS, "ollama");
});

Deno.test("enforceParams: the first rejected parameter in table order is reported; provider named", () => {
  const r = req({ logprobs: true, logit_bias: { "1": 1 } });
  let caught: unknown;
  try {
    enforceParams(r, OLLAMA_PARAMS, "my-ollama");
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof UnsupportedParameterError);
  assert.equal(caught.param, "logit_bias");
  assert.match(caught.message, /provider 'my-ollama'/);
  // A table without notes ends the message with a full stop.
  try {
    enforceParams(req({ user: "u" }), { user: { support: "rejected" } }, "p");
    assert.fail("expected a throw");
  } catch (err) {
    assert.ok(err instanceof UnsupportedParameterError);
    assert.equal(err.message, "Unsupported parameter: 'user' is not supported by provider 'p'.");
  }
});

// ── Responses ──────────────────────────────────────────────────────────────────

Deno.test("toChoiceMessage: plain text, length, thinking", () => {
  const r = toChoiceMessage({
    message: { role: "assistant", content: "Hello", thinking: "hmm" },
    done: true,
    done_reason: "stop",
  }, SHAPE);
  assert.deepEqual(r, {
    message: { role: "assistant", content: "Hello", refusal: null, reasoning_content: "hmm" },
    finish: "stop",
  });
  const len = toChoiceMessage(
    { message: { role: "assistant", content: "Hel" }, done_reason: "length" },
    SHAPE,
  );
  assert.equal(len.finish, "length");
  assert.equal(len.message.content, "Hel");
  // No message at all: empty text.
  assert.deepEqual(toChoiceMessage({ done: true }, SHAPE).message, {
    role: "assistant",
    content: "",
    refusal: null,
  });
  // done_reason "load" or unknown → stop.
  assert.equal(toChoiceMessage({ message: { content: "x" }, done_reason: "load" }, SHAPE).finish, "stop");
});

Deno.test("toChoiceMessage: tool calls get call_ ids, serialised arguments, finish tool_calls", () => {
  const r = toChoiceMessage({
    message: {
      role: "assistant",
      content: "",
      tool_calls: [
        { function: { name: "get_weather", arguments: { city: "Paris" } } },
        { id: "call_fromupstream", function: { name: "get_time", arguments: '{"tz":"UTC"}' } },
        { function: { name: "noargs" } },
      ],
    },
    done: true,
    done_reason: "stop",
  }, SHAPE);
  assert.equal(r.finish, "tool_calls");
  assert.equal(r.message.content, null);
  const calls = r.message.tool_calls!;
  assert.equal(calls.length, 3);
  assert.match(calls[0]!.id, /^call_[0-9A-Za-z]{24}$/);
  assert.equal(calls[1]!.id, "call_fromupstream");
  assert.notEqual(calls[0]!.id, calls[2]!.id);
  assert.deepEqual(calls.map((c) => c.type), ["function", "function", "function"]);
  assert.deepEqual(calls[0]!.function, { name: "get_weather", arguments: '{"city":"Paris"}' });
  assert.deepEqual(calls[1]!.function, { name: "get_time", arguments: '{"tz":"UTC"}' });
  assert.deepEqual(calls[2]!.function, { name: "noargs", arguments: "{}" });
  assert.equal(r.message.function_call, undefined);
});

Deno.test("toChoiceMessage: text alongside tool calls is kept", () => {
  const r = toChoiceMessage({
    message: { content: "Let me check.", tool_calls: [{ function: { name: "f", arguments: {} } }] },
    done: true,
  }, SHAPE);
  assert.equal(r.message.content, "Let me check.");
  assert.equal(r.finish, "tool_calls");
});

Deno.test("toChoiceMessage: parallel_tool_calls false keeps only the first call", () => {
  const r = toChoiceMessage({
    message: {
      content: "",
      tool_calls: [{ function: { name: "a", arguments: {} } }, { function: { name: "b", arguments: {} } }],
    },
    done: true,
  }, { parallelToolCalls: false, legacyFunctions: false });
  assert.deepEqual(r.message.tool_calls!.map((c) => c.function.name), ["a"]);
});

Deno.test("toChoiceMessage: legacy functions → function_call and finish function_call", () => {
  const r = toChoiceMessage({
    message: {
      content: "",
      tool_calls: [
        { function: { name: "lookup", arguments: { q: "x" } } },
        { function: { name: "other", arguments: {} } },
      ],
    },
    done: true,
  }, { parallelToolCalls: true, legacyFunctions: true });
  assert.equal(r.finish, "function_call");
  assert.deepEqual(r.message.function_call, { name: "lookup", arguments: '{"q":"x"}' });
  assert.equal(r.message.tool_calls, undefined);
  assert.equal(r.message.content, null);
});

Deno.test("usageOf: counts, zeros when missing", () => {
  assert.deepEqual(usageOf({ prompt_eval_count: 12, eval_count: 30 }), {
    prompt_tokens: 12,
    completion_tokens: 30,
    total_tokens: 42,
  });
  assert.deepEqual(usageOf({}), { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
});

// ── Stream chunks ──────────────────────────────────────────────────────────────

const BASE = { id: "chatcmpl-test", created: 1700000000, model: "llama3.2" };

function deltas(chunks: ChatCompletionChunk[]) {
  return chunks.map((c) => ({ delta: c.choices[0]!.delta, finish: c.choices[0]!.finish_reason }));
}

Deno.test("OllamaChunkTranslator: role on the first delta only; finish chunk; chunk envelope", () => {
  const t = new OllamaChunkTranslator(BASE, SHAPE);
  const out = [
    ...t.translate({ message: { role: "assistant", content: "Hel" }, done: false }),
    ...t.translate({ message: { role: "assistant", content: "" }, done: false }), // nothing to send
    ...t.translate({ message: { role: "assistant", content: "lo" }, done: false }),
    ...t.translate({ message: { role: "assistant", content: "" }, done: true, done_reason: "stop" }),
  ];
  assert.deepEqual(deltas(out), [
    { delta: { role: "assistant", content: "Hel" }, finish: null },
    { delta: { content: "lo" }, finish: null },
    { delta: {}, finish: "stop" },
  ]);
  for (const c of out) {
    assert.equal(c.id, "chatcmpl-test");
    assert.equal(c.object, "chat.completion.chunk");
    assert.equal(c.created, 1700000000);
    assert.equal(c.model, "llama3.2");
    assert.equal(c.choices.length, 1);
    assert.equal(c.choices[0]!.index, 0);
    assert.equal(c.choices[0]!.logprobs, null);
  }
});

Deno.test("OllamaChunkTranslator: a stream that only finishes still carries the role; length", () => {
  const t = new OllamaChunkTranslator(BASE, SHAPE, 3);
  const out = t.translate({ message: { content: "" }, done: true, done_reason: "length" });
  assert.deepEqual(deltas(out), [{ delta: { role: "assistant" }, finish: "length" }]);
  assert.equal(out[0]!.choices[0]!.index, 3);
});

Deno.test("OllamaChunkTranslator: thinking → reasoning_content before content", () => {
  const t = new OllamaChunkTranslator(BASE, SHAPE);
  const out = [
    ...t.translate({ message: { thinking: "step 1", content: "" } }),
    ...t.translate({ message: { thinking: "step 2", content: "answer" } }),
  ];
  assert.deepEqual(deltas(out), [
    { delta: { role: "assistant", reasoning_content: "step 1" }, finish: null },
    { delta: { reasoning_content: "step 2" }, finish: null },
    { delta: { content: "answer" }, finish: null },
  ]);
});

Deno.test("OllamaChunkTranslator: tool-call deltas are index+id+type+name, then arguments; finish tool_calls", () => {
  const t = new OllamaChunkTranslator(BASE, SHAPE);
  const out = [
    ...t.translate({
      message: {
        content: "",
        tool_calls: [
          { function: { name: "get_weather", arguments: { city: "Paris" }, index: 0 } },
          { id: "call_up", function: { name: "get_time", arguments: '{"tz":"UTC"}', index: 1 } },
        ],
      },
    }),
    ...t.translate({ message: { content: "" }, done: true, done_reason: "stop" }),
  ];
  assert.equal(out.length, 5);
  const d = deltas(out);
  const first = d[0]!.delta;
  assert.equal(first.role, "assistant");
  assert.equal(first.content, null);
  assert.equal(first.tool_calls!.length, 1);
  const head = first.tool_calls![0]!;
  assert.equal(head.index, 0);
  assert.match(head.id!, /^call_[0-9A-Za-z]{24}$/);
  assert.equal(head.type, "function");
  assert.deepEqual(head.function, { name: "get_weather", arguments: "" });
  assert.deepEqual(d[1], {
    delta: { tool_calls: [{ index: 0, function: { arguments: '{"city":"Paris"}' } }] },
    finish: null,
  });
  assert.deepEqual(d[2], {
    delta: {
      content: null,
      tool_calls: [{
        index: 1,
        id: "call_up",
        type: "function",
        function: { name: "get_time", arguments: "" },
      }],
    },
    finish: null,
  });
  assert.deepEqual(d[3], {
    delta: { tool_calls: [{ index: 1, function: { arguments: '{"tz":"UTC"}' } }] },
    finish: null,
  });
  assert.deepEqual(d[4], { delta: {}, finish: "tool_calls" });
});

Deno.test("OllamaChunkTranslator: tool calls across lines keep counting indexes", () => {
  const t = new OllamaChunkTranslator(BASE, SHAPE);
  t.translate({ message: { content: "", tool_calls: [{ function: { name: "a", arguments: {} } }] } });
  const out = t.translate({
    message: { content: "", tool_calls: [{ function: { name: "b", arguments: {} } }] },
  });
  assert.equal(out[0]!.choices[0]!.delta.tool_calls![0]!.index, 1);
  assert.equal(out[0]!.choices[0]!.delta.role, undefined);
});

Deno.test("OllamaChunkTranslator: parallel_tool_calls false keeps one call", () => {
  const t = new OllamaChunkTranslator(BASE, { parallelToolCalls: false, legacyFunctions: false });
  const out = [
    ...t.translate({
      message: {
        content: "",
        tool_calls: [{ function: { name: "a", arguments: {} } }, { function: { name: "b", arguments: {} } }],
      },
    }),
    ...t.translate({ message: { content: "", tool_calls: [{ function: { name: "c", arguments: {} } }] } }),
    ...t.translate({ done: true }),
  ];
  const names = out.flatMap((c) => c.choices[0]!.delta.tool_calls ?? []).map((tc) => tc.function?.name)
    .filter(Boolean);
  assert.deepEqual(names, ["a"]);
  assert.equal(out.at(-1)!.choices[0]!.finish_reason, "tool_calls");
});

Deno.test("OllamaChunkTranslator: legacy functions stream function_call deltas", () => {
  const t = new OllamaChunkTranslator(BASE, { parallelToolCalls: true, legacyFunctions: true });
  const out = [
    ...t.translate({
      message: {
        content: "",
        tool_calls: [{ function: { name: "lookup", arguments: { q: 1 } } }, { function: { name: "x" } }],
      },
    }),
    ...t.translate({ done: true, done_reason: "stop" }),
  ];
  assert.deepEqual(deltas(out), [
    {
      delta: { role: "assistant", content: null, function_call: { name: "lookup", arguments: "" } },
      finish: null,
    },
    { delta: { function_call: { arguments: '{"q":1}' } }, finish: null },
    { delta: {}, finish: "function_call" },
  ]);
});

Deno.test("OllamaChunkTranslator: translators are independent per stream", () => {
  const a = new OllamaChunkTranslator(BASE, SHAPE, 0);
  const b = new OllamaChunkTranslator(BASE, SHAPE, 1);
  assert.equal(a.translate({ message: { content: "x" } })[0]!.choices[0]!.delta.role, "assistant");
  assert.equal(b.translate({ message: { content: "y" } })[0]!.choices[0]!.delta.role, "assistant");
  assert.equal(b.translate({ message: { content: "z" } })[0]!.choices[0]!.index, 1);
});
