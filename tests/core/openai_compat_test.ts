/**
 * Unit tests for the OpenAI-compatible provider (core/providers/openai_compat.ts)
 * against a tiny loopback upstream (`Deno.serve` on port 0) that answers with
 * recorded OpenAI-format bodies and SSE streams, chosen by the request's model.
 */
import assert from "node:assert/strict";
import {
  GatewayError,
  GatewayTimeoutError,
  InvalidRequestError,
  ModelNotFoundError,
  PermissionDeniedError,
  RateLimitError,
  ServiceUnavailableError,
  UpstreamError,
} from "../../core/errors.ts";
import type { ChatCompletionChunk, ChatCompletionRequest } from "../../core/protocol.ts";
import { ChatCompletionRequest as RequestSchema } from "../../core/protocol.ts";
import { type OpenAICompatOptions, OpenAICompatProvider } from "../../core/providers/openai_compat.ts";
import type { CallContext } from "../../core/providers/provider.ts";

const KEY = "sk-upstream-secret-0123456789";

interface Seen {
  method: string;
  path: string;
  headers: Headers;
  body: Record<string, unknown> | null;
}

// ── Recorded upstream answers ──────────────────────────────────────────────────

const COMPLETION = {
  id: "gen-1718000000-abcdef",
  object: "chat.completion",
  created: 1718000000,
  model: "meta-llama/llama-3-8b-instruct",
  system_fingerprint: "fp_123",
  choices: [
    {
      index: 0,
      message: { role: "assistant", content: "Hello!", reasoning: "The user greets me." },
      finish_reason: "eos",
    },
    {
      index: 1,
      message: { role: "assistant", content: "Hi!" },
      finish_reason: "stop",
      logprobs: { content: [] },
    },
  ],
  usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12, cost: 0.00002 },
  provider: "Groq",
};

const TOOL_COMPLETION = {
  id: "chatcmpl-upstream123",
  object: "chat.completion",
  created: 1718000001,
  model: "gpt-4o",
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: null,
      refusal: null,
      tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: '{"a":1}' } }],
    },
    logprobs: null,
    finish_reason: "tool_calls",
  }],
};

const SSE_STREAM = [
  ": OPENROUTER PROCESSING",
  "",
  'data: {"id":"gen-1","object":"chat.completion.chunk","created":1718000002,"model":"up","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
  "",
  ": OPENROUTER PROCESSING",
  "",
  'data: {"id":"gen-1","object":"chat.completion.chunk","created":1718000002,"model":"up","choices":[{"index":0,"delta":{"content":null,"reasoning":"Thinking..."},"finish_reason":null}]}',
  "",
  'data: {"id":"gen-1","object":"chat.completion.chunk","created":1718000002,"model":"up","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null,"logprobs":null}]}',
  "",
  'data: {"id":"gen-1","object":"chat.completion.chunk","model":"up","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}',
  "",
  'data: {"id":"gen-1","object":"chat.completion.chunk","created":1718000002,"model":"up","choices":[{"index":0,"delta":{},"finish_reason":"eos","native_finish_reason":"eos"}]}',
  "",
  'data: {"id":"gen-1","object":"chat.completion.chunk","created":1718000002,"model":"up","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"cost":0.0001}}',
  "",
  "data: [DONE]",
  "",
  "",
].join("\n");

const SSE_MIDSTREAM_ERROR = [
  'data: {"id":"gen-2","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{"role":"assistant","content":"Par"},"finish_reason":null}]}',
  "",
  'data: {"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min"},"user_id":"user_x"}',
  "",
  "",
].join("\n");

const SSE_MIDSTREAM_ERROR_STRING_CODE = [
  'data: {"id":"gen-3","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}',
  "",
  'data: {"error":{"code":"server_error","message":"The model crashed"}}',
  "",
  "",
].join("\n");

const SSE_NOT_JSON = 'data: {"id":"gen-4","choices":[]}\n\ndata: {oops\n\n';

function errorBody(status: number) {
  return {
    error: {
      message: `upstream says ${status}`,
      type: "invalid_request_error",
      param: "messages",
      code: status === 400 ? "context_length_exceeded" : null,
    },
  };
}

// ── The loopback upstream ──────────────────────────────────────────────────────

function answer(model: string): Response {
  const status = /^status-(\d{3})$/.exec(model);
  if (status) {
    const code = Number(status[1]);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (code === 429) headers["retry-after"] = "7";
    return new Response(JSON.stringify(errorBody(code)), { status: code, headers });
  }
  const sse = (text: string) => new Response(text, { headers: { "content-type": "text/event-stream" } });
  switch (model) {
    case "recorded":
      return Response.json(COMPLETION);
    case "tools":
      return Response.json(TOOL_COMPLETION);
    case "429-no-retry-after":
      return Response.json({ error: { message: "slow down", code: "rate_limit_exceeded" } }, { status: 429 });
    case "500-html":
      return new Response("<html><body>Bad Gateway</body></html>", { status: 500 });
    case "401-openrouter":
      return Response.json({ error: { message: "No auth credentials found", code: 401 } }, { status: 401 });
    case "error-in-200":
      return Response.json({
        error: { message: "Provider returned error", code: 502, metadata: { raw: "boom" } },
      });
    case "no-choices":
      return Response.json({ id: "x", object: "chat.completion" });
    case "not-json":
      return new Response("this is not json", { headers: { "content-type": "application/json" } });
    case "stream":
      return sse(SSE_STREAM);
    case "stream-error":
      return sse(SSE_MIDSTREAM_ERROR);
    case "stream-error-string":
      return sse(SSE_MIDSTREAM_ERROR_STRING_CODE);
    case "stream-not-json":
      return sse(SSE_NOT_JSON);
    default:
      return Response.json({ error: { message: `no such model ${model}` } }, { status: 404 });
  }
}

async function withUpstream(
  fn: (base: string, seen: Seen[]) => Promise<void>,
): Promise<void> {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const text = await req.text();
    const body = text ? JSON.parse(text) : null;
    seen.push({ method: req.method, path: url.pathname, headers: req.headers, body });
    if (url.pathname === "/v1/models") {
      return Response.json({
        object: "list",
        data: [
          { id: "gpt-4o", object: "model", created: 1700000000, owned_by: "openai" },
          { id: "local-model", object: "model" },
          { object: "model" },
        ],
      });
    }
    if (url.pathname !== "/v1/chat/completions") return new Response("not found", { status: 404 });
    return answer(String(body?.model));
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}/v1/`, seen);
  } finally {
    await server.shutdown();
  }
}

function provider(base: string, opts: Partial<OpenAICompatOptions> = {}): OpenAICompatProvider {
  return new OpenAICompatProvider({
    name: "vllm",
    baseUrl: base,
    apiKey: KEY,
    timeoutMs: 5_000,
    streamIdleTimeoutMs: 5_000,
    ...opts,
  });
}

const ctx = (responseModel = "my-alias"): CallContext => ({
  signal: new AbortController().signal,
  requestId: "req_test",
  responseModel,
});

function req(fields: Record<string, unknown> = {}): ChatCompletionRequest {
  return RequestSchema.parse({ model: "my-alias", messages: [{ role: "user", content: "hi" }], ...fields });
}

async function drain(it: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const out: ChatCompletionChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

async function caught(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GatewayError, `expected a GatewayError, got ${err}`);
    return err;
  }
  assert.fail("expected an error");
}

// ── Tests ──────────────────────────────────────────────────────────────────────

Deno.test("complete: forwards the request with the upstream model, key and headers; no stream_options", async () => {
  await withUpstream(async (base, seen) => {
    const p = provider(base, { headers: { "X-Team": "research" } });
    try {
      await p.complete(
        req({ temperature: 0.3, stream_options: { include_usage: true }, provider: { order: ["groq"] } }),
        "recorded",
        ctx(),
      );
      assert.equal(seen.length, 1);
      const s = seen[0]!;
      assert.equal(s.method, "POST");
      assert.equal(s.path, "/v1/chat/completions", "trailing slashes of the base URL are dropped");
      assert.equal(s.headers.get("authorization"), `Bearer ${KEY}`);
      assert.equal(s.headers.get("content-type"), "application/json");
      assert.equal(s.headers.get("x-team"), "research");
      assert.equal(s.body!.model, "recorded");
      assert.equal(s.body!.stream, false);
      assert.equal(s.body!.temperature, 0.3);
      assert.deepEqual(s.body!.provider, { order: ["groq"] }, "extras pass through");
      assert.ok(!("stream_options" in s.body!), "stream_options is only for streams");
    } finally {
      p.close();
    }
  });
});

Deno.test("complete: the answer is normalised to OpenAI's shape", async () => {
  await withUpstream(async (base) => {
    const p = provider(base);
    try {
      const c = await p.complete(req(), "recorded", ctx("fast"));
      assert.match(c.id, /^chatcmpl-[0-9A-Za-z]{29}$/, "a non-chatcmpl id is replaced");
      assert.equal(c.object, "chat.completion");
      assert.equal(c.created, 1718000000);
      assert.equal(c.model, "fast", "model is what the client asked for");
      assert.equal(c.system_fingerprint, "fp_123");
      assert.deepEqual(c.usage, COMPLETION.usage, "usage (with cost) kept");
      const [a, b] = c.choices;
      assert.deepEqual(a, {
        index: 0,
        message: {
          role: "assistant",
          content: "Hello!",
          reasoning: "The user greets me.",
          reasoning_content: "The user greets me.",
          refusal: null,
        },
        finish_reason: "stop", // unknown "eos" → stop
        logprobs: null,
      });
      assert.equal(b!.message.refusal, null);
      assert.deepEqual(b!.logprobs, { content: [] }, "present logprobs kept");
      assert.equal(b!.finish_reason, "stop");
      // A chatcmpl id and tool calls pass unchanged.
      const t = await p.complete(req(), "tools", ctx());
      assert.equal(t.id, "chatcmpl-upstream123");
      assert.equal(t.choices[0]!.message.content, null);
      assert.equal(t.choices[0]!.finish_reason, "tool_calls");
      assert.deepEqual(t.choices[0]!.message.tool_calls, TOOL_COMPLETION.choices[0]!.message.tool_calls);
    } finally {
      p.close();
    }
  });
});

Deno.test("complete: unusable 200 answers are 502", async () => {
  await withUpstream(async (base) => {
    const p = provider(base);
    try {
      const e1 = await caught(p.complete(req(), "error-in-200", ctx()));
      assert.ok(e1 instanceof UpstreamError);
      assert.equal(e1.status, 502);
      assert.match(e1.message, /^Provider 'vllm': Provider returned error \(boom\)$/);
      const e2 = await caught(p.complete(req(), "no-choices", ctx()));
      assert.equal(e2.status, 502);
      assert.match(e2.message, /without choices/);
      const e3 = await caught(p.complete(req(), "not-json", ctx()));
      assert.equal(e3.status, 502);
      assert.match(e3.message, /not JSON/);
    } finally {
      p.close();
    }
  });
});

Deno.test("errors: upstream statuses map to gateway errors that keep the upstream message", async () => {
  await withUpstream(async (base) => {
    const p = provider(base);
    try {
      const e400 = await caught(p.complete(req(), "status-400", ctx()));
      assert.ok(e400 instanceof InvalidRequestError);
      assert.equal(e400.status, 400);
      assert.equal(e400.param, "messages");
      assert.equal(e400.code, "context_length_exceeded");
      assert.equal(e400.message, "Provider 'vllm': upstream says 400");

      const e422 = await caught(p.complete(req(), "status-422", ctx()));
      assert.equal(e422.status, 400);
      assert.equal(e422.code, "invalid_request", "no upstream code → invalid_request");

      const e401 = await caught(p.complete(req(), "status-401", ctx()));
      assert.ok(e401 instanceof UpstreamError);
      assert.equal(e401.status, 502, "the client's key is fine; the gateway's is not");
      assert.equal(e401.code, "upstream_auth_failed");
      assert.match(e401.message, /rejected the gateway's credentials: upstream says 401/);
      assert.ok(!e401.message.includes(KEY));

      const e402 = await caught(p.complete(req(), "status-402", ctx()));
      assert.equal(e402.status, 402);
      assert.equal(e402.type, "insufficient_quota");
      assert.equal(e402.code, "upstream_payment_required");

      const e403 = await caught(p.complete(req(), "status-403", ctx()));
      assert.ok(e403 instanceof PermissionDeniedError);
      assert.equal(e403.status, 403);
      assert.equal(e403.code, "upstream_forbidden");

      const e404 = await caught(p.complete(req(), "status-404", ctx()));
      assert.ok(e404 instanceof ModelNotFoundError);
      assert.equal(e404.status, 404);
      assert.equal(e404.code, "model_not_found");
      assert.equal(e404.param, "model");
      assert.match(
        e404.message,
        /The model 'status-404' does not exist on provider 'vllm': upstream says 404/,
      );

      for (const s of [408, 504]) {
        const e = await caught(p.complete(req(), `status-${s}`, ctx()));
        assert.ok(e instanceof GatewayTimeoutError, `${s}`);
        assert.equal(e.status, 504);
      }

      const e413 = await caught(p.complete(req(), "status-413", ctx()));
      assert.equal(e413.status, 413);

      const e429 = await caught(p.complete(req(), "status-429", ctx()));
      assert.ok(e429 instanceof RateLimitError);
      assert.equal(e429.status, 429);
      assert.equal(e429.headers["retry-after"], "7", "retry-after from the upstream header");
      assert.equal(e429.headers["retry-after-ms"], "7000");
      assert.equal(e429.code, "rate_limit_exceeded");

      const e429b = await caught(p.complete(req(), "429-no-retry-after", ctx()));
      assert.equal(e429b.headers["retry-after"], "1");

      const e503 = await caught(p.complete(req(), "status-503", ctx()));
      assert.ok(e503 instanceof ServiceUnavailableError);
      assert.equal(e503.status, 503);

      for (const s of [500, 502, 520, 599]) {
        const e = await caught(p.complete(req(), `status-${s}`, ctx()));
        assert.ok(e instanceof UpstreamError, `${s}`);
        assert.equal(e.status, 502, `${s}`);
        assert.equal(e.code, "upstream_error");
      }
      const html = await caught(p.complete(req(), "500-html", ctx()));
      assert.equal(html.status, 502);
      assert.match(html.message, /Bad Gateway/);

      // OpenRouter's numeric codes are not copied into `code`.
      const or401 = await caught(p.complete(req(), "401-openrouter", ctx()));
      assert.equal(or401.code, "upstream_auth_failed");
      // Errors come the same way before a stream starts.
      const s429 = await caught(p.stream(req(), "status-429", ctx()));
      assert.ok(s429 instanceof RateLimitError);
    } finally {
      p.close();
    }
  });
});

Deno.test("stream: include_usage forced on; chunks normalised; comments skipped", async () => {
  await withUpstream(async (base, seen) => {
    const p = provider(base);
    try {
      const chunks = await drain(
        await p.stream(
          req({ stream: true, stream_options: { include_usage: false } }),
          "stream",
          ctx("fast"),
        ),
      );
      const body = seen[0]!.body!;
      assert.equal(body.stream, true);
      assert.deepEqual(body.stream_options, { include_usage: true });
      assert.equal(chunks.length, 6);
      const id = chunks[0]!.id;
      assert.match(id, /^chatcmpl-[0-9A-Za-z]{29}$/);
      for (const c of chunks) {
        assert.equal(c.id, id, "one id for the whole stream");
        assert.equal(c.object, "chat.completion.chunk");
        assert.equal(c.model, "fast");
        assert.equal(typeof c.created, "number");
      }
      assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: "assistant", content: "" });
      assert.equal(
        chunks[1]!.choices[0]!.delta.reasoning_content,
        "Thinking...",
        "reasoning → reasoning_content",
      );
      assert.equal(chunks[2]!.choices[0]!.delta.content, "Hel");
      assert.ok(!("refusal" in chunks[2]!.choices[0]!.delta), "a chunk without refusal is fine as it is");
      assert.equal(chunks[3]!.created > 0, true, "a missing created is filled in");
      assert.equal(chunks[4]!.choices[0]!.finish_reason, "stop", "unknown finish_reason → stop");
      for (const c of chunks.slice(0, 4)) assert.equal(c.choices[0]!.finish_reason, null);
      assert.deepEqual(chunks[5]!.choices, []);
      assert.deepEqual(chunks[5]!.usage, {
        prompt_tokens: 5,
        completion_tokens: 2,
        total_tokens: 7,
        cost: 0.0001,
      });
      // Without stream_options in the request it is added too.
      await drain(await p.stream(req({ stream: true }), "stream", ctx()));
      assert.deepEqual(seen[1]!.body!.stream_options, { include_usage: true });
    } finally {
      p.close();
    }
  });
});

Deno.test("stream: a mid-stream error with numeric code 429 → RateLimitError after the first chunks", async () => {
  await withUpstream(async (base) => {
    const p = provider(base);
    try {
      const got: ChatCompletionChunk[] = [];
      const err = await caught((async () => {
        for await (const c of await p.stream(req({ stream: true }), "stream-error", ctx())) got.push(c);
      })());
      assert.equal(got.length, 1);
      assert.equal(got[0]!.choices[0]!.delta.content, "Par");
      assert.ok(err instanceof RateLimitError);
      assert.equal(err.status, 429);
      assert.match(err.message, /Rate limit exceeded: free-models-per-min/);

      const e2 = await caught(drain(await p.stream(req({ stream: true }), "stream-error-string", ctx())));
      assert.equal(e2.status, 502, "a non-HTTP code → 502");
      assert.equal(e2.code, "upstream_error");
      assert.match(e2.message, /The model crashed/);

      const e3 = await caught(drain(await p.stream(req({ stream: true }), "stream-not-json", ctx())));
      assert.ok(e3 instanceof UpstreamError);
      assert.match(e3.message, /not JSON/);
    } finally {
      p.close();
    }
  });
});

Deno.test("unconfigured (requireKey without a key): 503 and no request is sent", async () => {
  await withUpstream(async (base, seen) => {
    const p = provider(base, { name: "openrouter", kind: "openrouter", apiKey: undefined, requireKey: true });
    try {
      assert.equal(p.configured, false);
      assert.equal(p.kind, "openrouter");
      assert.match(p.configProblem!, /no API key configured for provider 'openrouter'/);
      for (
        const call of [
          () => p.complete(req(), "recorded", ctx()),
          () => p.stream(req({ stream: true }), "stream", ctx()),
          () => p.listModels(),
        ]
      ) {
        const e = await caught(call());
        assert.ok(e instanceof ServiceUnavailableError);
        assert.equal(e.status, 503);
        assert.equal(e.code, "service_unavailable");
        assert.match(e.message, /Provider 'openrouter' is not configured/);
      }
      assert.deepEqual(await p.health(), {
        name: "openrouter",
        kind: "openrouter",
        status: "unconfigured",
        detail: "no API key configured for provider 'openrouter'",
      });
      assert.equal(seen.length, 0, "nothing reached the upstream");
    } finally {
      p.close();
    }
  });
  // Without requireKey, no key is fine (local servers) and no authorization header is sent.
  await withUpstream(async (base, seen) => {
    const p = provider(base, { apiKey: undefined });
    try {
      assert.equal(p.configured, true);
      await p.complete(req(), "recorded", ctx());
      assert.equal(seen[0]!.headers.get("authorization"), null);
    } finally {
      p.close();
    }
  });
});

Deno.test("listModels and health", async () => {
  await withUpstream(async (base, seen) => {
    const p = provider(base);
    try {
      assert.deepEqual(await p.listModels(), [
        { id: "gpt-4o", ownedBy: "openai", created: 1700000000 },
        { id: "local-model", ownedBy: "vllm", created: 0 },
      ]);
      assert.equal(seen[0]!.method, "GET");
      assert.equal(seen[0]!.headers.get("authorization"), `Bearer ${KEY}`);
      const h = await p.health();
      assert.equal(h.status, "ok");
      assert.equal(h.name, "vllm");
      assert.equal(h.kind, "openai");
      assert.equal(typeof h.latencyMs, "number");
    } finally {
      p.close();
    }
  });
});

Deno.test("an unreachable upstream is 503 (no server listening)", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const p = provider(`http://127.0.0.1:${port}/v1`);
  try {
    const e = await caught(p.complete(req(), "recorded", ctx()));
    assert.ok(e instanceof ServiceUnavailableError);
    assert.match(e.message, /Provider 'vllm' is unreachable/);
    const h = await p.health();
    assert.equal(h.status, "unreachable");
  } finally {
    p.close();
  }
});
