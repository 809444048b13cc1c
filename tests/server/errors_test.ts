/**
 * Bad input and broken upstreams get OpenAI-shaped errors with the right status,
 * type, code and param — never a 500 for anything a client can send.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { raw, startHarness } from "../harness.ts";
import { validateSchema } from "../schemas/validate.ts";

interface ErrBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function errorOf(res: Response): Promise<ErrBody> {
  const body = await res.json();
  validateSchema("ErrorResponse", body);
  assert.ok(res.headers.get("x-request-id"), "x-request-id on errors");
  return body;
}

const USER = [{ role: "user", content: "hi" }];

Deno.test("client mistakes get 4xx with type, code and param", async () => {
  const h = await startHarness();
  try {
    const cases: [string, RequestInit & { path?: string }, number, Partial<ErrBody["error"]>][] = [
      ["malformed JSON", { method: "POST", body: '{"model": "llama3.2", "messages": [' }, 400, {
        type: "invalid_request_error",
        code: "invalid_json",
        param: null,
      }],
      ["empty body", { method: "POST", body: "" }, 400, { code: "invalid_json" }],
      ["body not an object", { method: "POST", body: "[1,2]" }, 400, { type: "invalid_request_error" }],
      ["missing messages", { method: "POST", body: JSON.stringify({ model: "llama3.2" }) }, 400, {
        param: "messages",
        code: "missing_required_parameter",
      }],
      ["empty messages", { method: "POST", body: JSON.stringify({ model: "llama3.2", messages: [] }) }, 400, {
        param: "messages",
      }],
      [
        "bad role deep in the list",
        {
          method: "POST",
          body: JSON.stringify({
            model: "llama3.2",
            messages: [...USER, ...USER, { role: "robot", content: "x" }],
          }),
        },
        400,
        { param: "messages[2].role", type: "invalid_request_error" },
      ],
      [
        "missing content part field",
        {
          method: "POST",
          body: JSON.stringify({
            model: "llama3.2",
            messages: [{ role: "user", content: [{ type: "image_url" }] }],
          }),
        },
        400,
        { param: "messages[0].content[0].image_url", code: "missing_required_parameter" },
      ],
      [
        "tool message without tool_call_id",
        {
          method: "POST",
          body: JSON.stringify({ model: "llama3.2", messages: [...USER, { role: "tool", content: "r" }] }),
        },
        400,
        { param: "messages[1].tool_call_id" },
      ],
      [
        "top_p out of range",
        {
          method: "POST",
          body: JSON.stringify({ model: "llama3.2", messages: USER, top_p: 1.5 }),
        },
        400,
        { param: "top_p", code: "invalid_value" },
      ],
      [
        "n not an integer",
        { method: "POST", body: JSON.stringify({ model: "llama3.2", messages: USER, n: 1.5 }) },
        400,
        {
          param: "n",
        },
      ],
      [
        "too many stop sequences",
        {
          method: "POST",
          body: JSON.stringify({ model: "llama3.2", messages: USER, stop: ["a", "b", "c", "d", "e"] }),
        },
        400,
        { param: "stop" },
      ],
      [
        "wrong type for stream",
        {
          method: "POST",
          body: JSON.stringify({ model: "llama3.2", messages: USER, stream: "yes" }),
        },
        400,
        { param: "stream", code: "invalid_type" },
      ],
      [
        "image URL Ollama cannot fetch",
        {
          method: "POST",
          body: JSON.stringify({
            model: "llama3.2",
            messages: [{
              role: "user",
              content: [{ type: "text", text: "see" }, {
                type: "image_url",
                image_url: { url: "http://x/y.png" },
              }],
            }],
          }),
        },
        400,
        { param: "messages[0].content[1].image_url.url", code: "unsupported_parameter" },
      ],
      [
        "assistant tool call with broken JSON arguments",
        {
          method: "POST",
          body: JSON.stringify({
            model: "llama3.2",
            messages: [...USER, {
              role: "assistant",
              content: null,
              tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: "{oops" } }],
            }, { role: "tool", tool_call_id: "call_1", content: "r" }],
          }),
        },
        400,
        { param: "messages[1].tool_calls[0].function.arguments" },
      ],
      ["unknown route", { method: "GET", path: "/v1/nothing-here" }, 404, { code: "unknown_url" }],
      ["wrong method", { method: "DELETE", path: "/v1/chat/completions" }, 405, {
        code: "method_not_allowed",
      }],
      [
        "unsupported content type",
        {
          method: "POST",
          body: "<xml/>",
          headers: { "content-type": "application/xml" },
        },
        415,
        { code: "unsupported_media_type" },
      ],
      [
        "unknown model",
        { method: "POST", body: JSON.stringify({ model: "ghost-model", messages: USER }) },
        404,
        {
          code: "model_not_found",
          param: "model",
        },
      ],
    ];
    for (const [what, init, status, expected] of cases) {
      const res = await raw(h, init.path ?? "/v1/chat/completions", init);
      assert.equal(res.status, status, what);
      const body = await errorOf(res);
      for (const [k, v] of Object.entries(expected)) {
        assert.equal(body.error[k as keyof ErrBody["error"]], v, `${what}: ${k} (${body.error.message})`);
      }
      assert.ok(body.error.message.length > 10, what);
    }
    // The JSON syntax error says where.
    const bad = await errorOf(await raw(h, "/v1/chat/completions", { method: "POST", body: '{"model": x}' }));
    assert.match(bad.error.message, /line 1 column \d+/);
    // The unknown-model message lists what is available.
    const nf = await errorOf(
      await raw(h, "/v1/chat/completions", {
        method: "POST",
        body: JSON.stringify({ model: "ghost", messages: USER }),
      }),
    );
    assert.match(nf.error.message, /Available models: .*llama3\.2/);
  } finally {
    await h.close();
  }
});

Deno.test("a body over the limit gets 413", async () => {
  const h = await startHarness({ env: { LLMGW_MAX_BODY_BYTES: "2048" } });
  try {
    const big = JSON.stringify({
      model: "llama3.2",
      messages: [{ role: "user", content: "x".repeat(5000) }],
    });
    const res = await raw(h, "/v1/chat/completions", { method: "POST", body: big });
    assert.equal(res.status, 413);
    const body = await errorOf(res);
    assert.equal(body.error.code, "request_too_large");
    // Also when the size is not declared up front (chunked upload).
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    const chunked = await raw(h, "/v1/chat/completions", { method: "POST", body: stream });
    assert.equal(chunked.status, 413);
    await chunked.body?.cancel();
  } finally {
    await h.close();
  }
});

Deno.test("no reachable provider → 503 that says what is missing; /health says it too", async () => {
  const h = await startHarness({
    noOpenRouterKey: true,
    env: { OLLAMA_BASE_URL: "http://127.0.0.1:9" },
  });
  try {
    const err = await h.client().chat.completions.create({
      model: "llama3.2",
      messages: [{ role: "user", content: "x" }],
    })
      .then(() => null, (e) => e);
    assert.ok(err instanceof OpenAI.InternalServerError);
    assert.equal(err.status, 503);
    assert.match(err.message, /ollama.*(refused|unreachable)/i);
    assert.match(err.message, /openrouter: no API key/);
    const direct = await h.client().chat.completions.create({
      model: "ollama/llama3.2",
      messages: [{ role: "user", content: "x" }],
    }).then(() => null, (e) => e);
    assert.equal(direct.status, 503);
    const health = await (await fetch(`${h.url}/health`)).json();
    assert.equal(health.status, "down");
    const states = Object.fromEntries(
      health.providers.map((p: { name: string; status: string }) => [p.name, p.status]),
    );
    assert.deepEqual(states, { ollama: "unreachable", openrouter: "unconfigured" });
    assert.equal(typeof health.version, "string");
  } finally {
    await h.close();
  }
});

Deno.test("an upstream that does not answer in time → 504", async () => {
  const h = await startHarness({ env: { LLMGW_UPSTREAM_TIMEOUT_MS: "300" } });
  try {
    for (const stream of [false, true]) {
      const res = await raw(h, "/v1/chat/completions", {
        method: "POST",
        body: JSON.stringify({ model: "ollama/hang", stream, messages: USER }),
      });
      assert.equal(res.status, 504, `stream=${stream}`);
      const body = await errorOf(res);
      assert.equal(body.error.code, "upstream_timeout");
    }
  } finally {
    await h.close();
  }
});

Deno.test("/health, /openapi.json and /docs answer without a key", async () => {
  const h = await startHarness({ auth: true });
  try {
    const health = await fetch(`${h.url}/health`);
    assert.equal(health.status, 200);
    const body = await health.json();
    assert.equal(body.status, "ok");
    assert.deepEqual(body.providers.map((p: { name: string }) => p.name), ["ollama", "openrouter"]);
    const doc = await (await fetch(`${h.url}/openapi.json`)).json();
    assert.equal(doc.openapi, "3.1.0");
    assert.ok(doc.paths["/v1/chat/completions"].post);
    assert.ok(doc.paths["/admin/keys"].post);
    assert.ok(doc.components.schemas.CreateChatCompletionRequest.properties.messages);
    const docs = await fetch(`${h.url}/docs`);
    assert.match(docs.headers.get("content-type")!, /text\/html/);
    assert.match(await docs.text(), /\/v1\/chat\/completions/);
    const pre = await fetch(`${h.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: {
        origin: "http://app.example",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "*");
    await pre.body?.cancel();
  } finally {
    await h.close();
  }
});

Deno.test("/metrics counts requests by provider, model and status, for admin keys only", async () => {
  const h = await startHarness({ auth: true });
  try {
    await h.client().chat.completions.create({
      model: "llama3.2",
      messages: [{ role: "user", content: "a b" }],
    });
    await h.client().chat.completions.create({
      model: "made-up-model",
      messages: [{ role: "user", content: "x" }],
    })
      .catch(() => {});
    const res = await raw(h, "/metrics");
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(
      text,
      /llmgw_requests_total\{provider="ollama",model="llama3.2",status="200",stream="false"\} 1/,
    );
    assert.match(text, /llmgw_requests_total\{provider="",model="",status="404",stream="false"\} 1/);
    assert.doesNotMatch(text, /made-up-model/, "unrouted model names do not become labels");
    assert.match(text, /llmgw_request_duration_ms_count 2/);
    const anonymous = await fetch(`${h.url}/metrics`);
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
  } finally {
    await h.close();
  }
});

Deno.test("graceful shutdown cuts a hung request after the grace period with a 503", async () => {
  const h = await startHarness({ env: { LLMGW_SHUTDOWN_GRACE_MS: "300" } });
  let closed = false;
  try {
    const pending = raw(h, "/v1/chat/completions", {
      method: "POST",
      body: JSON.stringify({ model: "ollama/hang", messages: USER }),
    });
    await new Promise((r) => setTimeout(r, 150));
    const started = Date.now();
    const stopping = h.close().then(() => (closed = true));
    const res = await pending;
    assert.equal(res.status, 503);
    assert.equal((await errorOf(res)).error.code, "shutting_down");
    await stopping;
    assert.ok(Date.now() - started < 5000, "shutdown did not wait for the upstream timeout");
  } finally {
    if (!closed) await h.close();
  }
});
