/**
 * Tests of the official-schema validator (validate.ts): real-world OpenAI bodies pass,
 * broken ones fail with the violations listed.
 */
import assert from "node:assert/strict";
import { assertValid, isValid, validateSchema } from "./validate.ts";

const completion = {
  id: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  object: "chat.completion",
  created: 1741569952,
  model: "gpt-4o-mini-2024-07-18",
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: "Hello! How can I assist you today?",
      refusal: null,
      annotations: [],
    },
    logprobs: null,
    finish_reason: "stop",
  }],
  usage: {
    prompt_tokens: 19,
    completion_tokens: 10,
    total_tokens: 29,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  },
  service_tier: "default",
  system_fingerprint: "fp_06737a9306",
};

const toolCallCompletion = {
  id: "chatcmpl-abc123",
  object: "chat.completion",
  created: 1699896916,
  model: "gpt-4o-mini",
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: null,
      refusal: null,
      tool_calls: [
        {
          id: "call_abc123",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Paris"}' },
        },
        {
          id: "call_def456",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Tokyo"}' },
        },
      ],
    },
    logprobs: null,
    finish_reason: "tool_calls",
  }],
  usage: { prompt_tokens: 82, completion_tokens: 17, total_tokens: 99 },
};

const chunkBase = {
  id: "chatcmpl-123",
  object: "chat.completion.chunk",
  created: 1694268190,
  model: "gpt-4o-mini",
};
const roleChunk = {
  ...chunkBase,
  system_fingerprint: "fp_44709d6fcb",
  choices: [{
    index: 0,
    delta: { role: "assistant", content: "", refusal: null },
    logprobs: null,
    finish_reason: null,
  }],
};
const toolDeltaChunk = {
  ...chunkBase,
  choices: [{
    index: 0,
    delta: {
      tool_calls: [{
        index: 0,
        id: "call_abc",
        type: "function",
        function: { name: "get_weather", arguments: "" },
      }],
    },
    finish_reason: null,
  }],
};
const argFragmentChunk = {
  ...chunkBase,
  choices: [{
    index: 0,
    delta: { tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] },
    finish_reason: null,
  }],
};
const finishChunk = { ...chunkBase, choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage: null };
const usageChunk = {
  ...chunkBase,
  choices: [],
  usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 },
};
const errorBody = {
  error: {
    message:
      "Incorrect API key provided: sk-abc. You can find your API key at https://platform.openai.com/account/api-keys.",
    type: "invalid_request_error",
    param: null,
    code: "invalid_api_key",
  },
};
const modelsList = {
  object: "list",
  data: [
    { id: "gpt-4o-mini", object: "model", created: 1721172741, owned_by: "system" },
    { id: "llama3.2:latest", object: "model", created: 1746405464, owned_by: "library" },
  ],
};

/** Asserts that validation fails and that the message mentions every `fragment`. */
function assertInvalid(name: Parameters<typeof validateSchema>[0], value: unknown, ...fragments: string[]) {
  assert.equal(isValid(name, value), false, `expected ${name} to reject ${JSON.stringify(value)}`);
  assert.throws(() => validateSchema(name, value), (e: unknown) => {
    assert.ok(e instanceof Error);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${f}" not in:\n${e.message}`);
    return true;
  });
}

const without = <T extends object>(o: T, key: keyof T) => {
  const copy = { ...o };
  delete copy[key];
  return copy;
};

Deno.test("accepts a normal chat completion", () => {
  validateSchema("CreateChatCompletionResponse", completion);
  assertValid("CreateChatCompletionResponse", completion);
});

Deno.test("accepts a tool-call completion with null content", () => {
  validateSchema("CreateChatCompletionResponse", toolCallCompletion);
});

Deno.test("accepts stream chunks: role delta, tool-call delta, argument fragment, finish, usage-only", () => {
  for (const c of [roleChunk, toolDeltaChunk, argFragmentChunk, finishChunk, usageChunk]) {
    validateSchema("CreateChatCompletionStreamResponse", c);
  }
});

Deno.test("accepts an error body, a models list and a model", () => {
  validateSchema("ErrorResponse", errorBody);
  validateSchema("ErrorResponse", { error: { message: "x", type: "server_error", param: null, code: null } });
  validateSchema("ListModelsResponse", modelsList);
  validateSchema("Model", modelsList.data[0]);
});

Deno.test("accepts chat completion requests", () => {
  validateSchema("CreateChatCompletionRequest", {
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "hi" }],
  });
  validateSchema("CreateChatCompletionRequest", {
    model: "gpt-4o-mini",
    messages: [
      { role: "system", content: "be brief" },
      { role: "user", content: [{ type: "text", text: "weather?" }] },
      { role: "assistant", content: null, tool_calls: toolCallCompletion.choices[0]!.message.tool_calls },
      { role: "tool", tool_call_id: "call_abc123", content: "11C" },
    ],
    tools: [{
      type: "function",
      function: { name: "get_weather", parameters: { type: "object", properties: {} } },
    }],
    tool_choice: "auto",
    stream: true,
    stream_options: { include_usage: true },
    stop: null,
    max_tokens: null,
    temperature: 0.2,
    response_format: { type: "json_object" },
  });
});

Deno.test("rejects a completion missing `created` (and other required fields)", () => {
  assertInvalid(
    "CreateChatCompletionResponse",
    without(completion, "created"),
    "required property 'created'",
  );
  assertInvalid("CreateChatCompletionResponse", without(completion, "object"), "required property 'object'");
  assertInvalid(
    "CreateChatCompletionResponse",
    { ...completion, object: "chat.completion.chunk" },
    "/object",
  );
  assertInvalid(
    "CreateChatCompletionResponse",
    { ...completion, created: "1741569952" },
    "/created",
    "integer",
  );
});

Deno.test("rejects choices without logprobs/refusal or with an unknown finish_reason", () => {
  const choice = completion.choices[0]!;
  assertInvalid(
    "CreateChatCompletionResponse",
    { ...completion, choices: [without(choice, "logprobs")] },
    "logprobs",
  );
  const noRefusal = { ...choice, message: { role: "assistant", content: "x" } };
  assertInvalid("CreateChatCompletionResponse", { ...completion, choices: [noRefusal] }, "refusal");
  assertInvalid(
    "CreateChatCompletionResponse",
    { ...completion, choices: [{ ...choice, finish_reason: "error" }] },
    "/choices/0/finish_reason",
  );
  const badUsage = { ...completion, usage: without(completion.usage, "total_tokens") };
  assertInvalid("CreateChatCompletionResponse", badUsage, "total_tokens");
});

Deno.test("rejects broken stream chunks", () => {
  assertInvalid("CreateChatCompletionStreamResponse", { ...roleChunk, object: "chat.completion" }, "/object");
  assertInvalid("CreateChatCompletionStreamResponse", without(roleChunk, "created"), "created");
  const noIndex = {
    ...chunkBase,
    choices: [{ index: 0, delta: { tool_calls: [{ id: "x" }] }, finish_reason: null }],
  };
  assertInvalid("CreateChatCompletionStreamResponse", noIndex, "index");
  const noFinish = { ...chunkBase, choices: [{ index: 0, delta: { content: "x" } }] };
  assertInvalid("CreateChatCompletionStreamResponse", noFinish, "finish_reason");
  const badFinish = { ...chunkBase, choices: [{ index: 0, delta: {}, finish_reason: "error" }] };
  assertInvalid("CreateChatCompletionStreamResponse", badFinish, "finish_reason");
  assertInvalid(
    "CreateChatCompletionStreamResponse",
    { ...usageChunk, usage: { prompt_tokens: 1 } },
    "usage",
  );
});

Deno.test("ErrorResponse requires message, type, param and code", () => {
  for (const key of ["message", "type", "param", "code"] as const) {
    assertInvalid("ErrorResponse", { error: without(errorBody.error, key) }, `required property '${key}'`);
  }
  assertInvalid("ErrorResponse", { error: "model 'x' not found" }, "/error");
  assertInvalid("ErrorResponse", { error: { message: "x", code: 400 } }, "type", "param");
});

Deno.test("rejects broken models", () => {
  assertInvalid("Model", without(modelsList.data[0]!, "owned_by"), "owned_by");
  assertInvalid("Model", { ...modelsList.data[0]!, object: "list" }, "/object");
  assertInvalid("ListModelsResponse", { data: modelsList.data }, "object");
  assertInvalid("ListModelsResponse", { object: "list", data: [{ id: "x" }] }, "/data/0");
});

Deno.test("rejects broken requests", () => {
  assertInvalid("CreateChatCompletionRequest", { messages: [{ role: "user", content: "hi" }] }, "model");
  assertInvalid(
    "CreateChatCompletionRequest",
    { model: "m", messages: [{ role: "wizard", content: "hi" }] },
    "/messages/0",
  );
  assertInvalid("CreateChatCompletionRequest", { model: "m", messages: [], temperature: 5 }, "/temperature");
});
