/**
 * Fake Ollama server for API tests and the load benchmark: `Deno.serve` on 127.0.0.1,
 * port 0, speaking Ollama's native API as documented in its `docs/api.md`
 * (ollama/ollama fb30760996871fa9460115c753afd2c60d4ab0f7), plus its OpenAI-compatible
 * `/v1/chat/completions` (docs/api/openai-compatibility.mdx).
 *
 * ```ts
 * const ollama = startFakeOllama({ models: ["qwen3:8b"] }); // base URL: ollama.url
 * ...; await ollama.close();
 * ```
 *
 * Endpoints: `GET /` ("Ollama is running"), `GET /api/version`, `GET /api/tags`,
 * `POST /api/show`, `POST /api/chat` (NDJSON stream by default, one JSON object with
 * `"stream": false`; the last object has `done: true`, `done_reason`, `total_duration`,
 * `load_duration`, `prompt_eval_count`, `prompt_eval_duration`, `eval_count`,
 * `eval_duration`), `POST /v1/chat/completions` (SSE; Ollama's flavour: `fp_ollama`,
 * `chatcmpl-<n>` ids, no `refusal`/`logprobs`, tool calls whole in one delta),
 * `GET /v1/models`. Unknown model: 404 `{"error":"model 'x' not found"}`; empty
 * `messages`: `done_reason` "load" (or "unload" with `keep_alive: 0`).
 *
 * Listed by /api/tags: `llama3.2:latest` (answers like `echo`), the behaviour names below
 * tagged `:latest`, and `opts.models`. Names are matched with or without `:latest`.
 * Behaviour by model name (last `/` segment, `:tag` dropped):
 * - `echo`: answers the last user message text, one word per chunk.
 * - `tools`: one tool call of the first request tool, Ollama style (no id, arguments as a
 *   JSON object made from the tool's schema: string `"<prop>-<n>"`, number n, boolean
 *   true, enum first value); `tools-parallel`: two calls in one message (first two
 *   tools, or the only one twice); `tools-with-id`: like `tools` but with `id` and
 *   `function.index` (newer Ollama). When a `tool` message follows the last user
 *   message, all three answer `Tool results: <contents joined by "; ">`. Without tools
 *   in the request they behave like `echo`. `done_reason` is "stop", as in Ollama.
 * - `no-tools-support`: 400 `{"error":"registry.ollama.ai/library/<name>:latest does not
 *   support tools"}` when `tools` is non-empty; otherwise `echo`.
 * - `midstream-error`: two chunks, then a line `{"error":"…"}` (non-streaming: 500).
 * - `slow` / `slow-<ms>`: echo with `slowDelayMs` (default 50) or <ms> between chunks.
 * - `length`: echo, `done_reason` "length". `num_predict` (or OpenAI `max_tokens`)
 *   truncates any answer with "length".
 * - `thinking`: `message.thinking` ("Let me think about that.", streamed first) unless
 *   `think: false`, then the echo.
 * - `json`: content is `JSON.stringify(format)` (`"\"json\""` or the schema).
 * - `tokens-<N>`: N chunks `tok0`, ` tok1`, …; `status-<code>`: that status with
 *   `{"error":"…"}`; `hang`: never answers (until the client aborts or close()).
 * Counts are deterministic: `prompt_eval_count` = words of all message texts,
 * `eval_count` = chunks (+10 per tool call); durations: load 1 ms, prompt 0.1 ms/token,
 * eval 10 ms/token (nanoseconds on the wire). `tokenDelayMs` delays every chunk.
 */
import {
  arr,
  behaviourOf,
  type FakeServer,
  hang,
  isBehaviour,
  json,
  type LazySignal,
  type Obj,
  obj,
  planChat,
  type PlanOptions,
  randomId,
  serveFake,
  statusOf,
  textStream,
} from "./fake_common.ts";
import { errorResponse, openaiChat } from "./fake_openai.ts";

export type { FakeServer, RecordedRequest } from "./fake_common.ts";

export interface FakeOllamaOptions extends PlanOptions {
  /** Record requests in `requests` (default true; turn off for benchmarks). */
  record?: boolean;
  /** Extra model names for /api/tags (they answer like `echo` unless named after a behaviour). */
  models?: string[];
}

export const OLLAMA_VERSION = "0.13.0";
const LISTED = [
  "llama3.2",
  "echo",
  "tools",
  "tools-parallel",
  "tools-with-id",
  "no-tools-support",
  "midstream-error",
  "slow",
  "length",
  "thinking",
  "json",
];
const MODIFIED_AT = "2025-05-04T17:37:44.706015396-07:00";
const MIDSTREAM_ERROR = "an error was encountered while running the model: unexpected EOF";

const tagged = (name: string) => name.includes(":") ? name : `${name}:latest`;

/** A stable fake sha256-looking digest of `name`. */
function digestOf(name: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0").repeat(8);
}

const DETAILS = {
  parent_model: "",
  format: "gguf",
  family: "llama",
  families: ["llama"],
  parameter_size: "3.2B",
  quantization_level: "Q4_K_M",
};

const tagEntry = (name: string) => ({
  name,
  model: name,
  modified_at: MODIFIED_AT,
  size: 2019393189,
  digest: digestOf(name),
  details: DETAILS,
});

function showBody(name: string): Obj {
  const b = behaviourOf(name);
  const capabilities = b === "no-tools-support"
    ? ["completion"]
    : b === "thinking"
    ? ["completion", "tools", "thinking"]
    : ["completion", "tools"];
  return {
    license: "",
    modelfile: `# Modelfile generated by "ollama show"\nFROM ${tagged(name)}\n`,
    parameters: 'stop                           "<|eot_id|>"',
    template: "{{ .Prompt }}",
    details: DETAILS,
    model_info: {
      "general.architecture": "llama",
      "general.parameter_count": 3212749888,
      "llama.context_length": 131072,
      "llama.embedding_length": 3072,
    },
    capabilities,
    modified_at: MODIFIED_AT,
  };
}

/** Ollama's `/api/chat` answer for model `model` (known, not an error behaviour). */
function nativeChat(b: Obj, model: string, signal: LazySignal, opts: FakeOllamaOptions): Response {
  const behaviour = behaviourOf(model);
  const createdAt = new Date().toISOString();
  const plan = planChat(b, behaviour, opts);
  const withId = behaviour === "tools-with-id";
  const toolCalls = plan.toolCalls.map((c, index) =>
    withId
      ? {
        id: `call_${randomId(8, "abcdefghijklmnopqrstuvwxyz0123456789")}`,
        function: { index, name: c.name, arguments: c.args },
      }
      : { function: { name: c.name, arguments: c.args } }
  );
  const promptNs = plan.promptTokens * 100_000,
    evalNs = plan.completionTokens * 10_000_000,
    loadNs = 1_000_000;
  const done = {
    done_reason: plan.finish === "length" ? "length" : "stop",
    done: true,
    total_duration: loadNs + promptNs + evalNs,
    load_duration: loadNs,
    prompt_eval_count: plan.promptTokens,
    prompt_eval_duration: promptNs,
    eval_count: plan.completionTokens,
    eval_duration: evalNs,
  };
  if (b.stream === false) {
    if (plan.errorAfter !== null) return json({ error: MIDSTREAM_ERROR }, 500);
    const message: Obj = { role: "assistant", content: plan.pieces.join("") };
    if (plan.thinking.length > 0) message.thinking = plan.thinking.join("");
    if (toolCalls.length > 0) message.tool_calls = toolCalls;
    return json({ model, created_at: createdAt, message, ...done });
  }
  const head = `{"model":${JSON.stringify(model)},"created_at":"${createdAt}","message":`;
  const line = (message: string) => `${head}${message},"done":false}\n`;
  const lines: string[] = [];
  for (const t of plan.thinking) {
    lines.push(line(`{"role":"assistant","content":"","thinking":${JSON.stringify(t)}}`));
  }
  for (const [i, p] of plan.pieces.entries()) {
    if (i === plan.errorAfter) break;
    lines.push(line(`{"role":"assistant","content":${JSON.stringify(p)}}`));
  }
  if (plan.errorAfter !== null) lines.push(`${JSON.stringify({ error: MIDSTREAM_ERROR })}\n`);
  else {
    if (toolCalls.length > 0) {
      lines.push(line(`{"role":"assistant","content":"","tool_calls":${JSON.stringify(toolCalls)}}`));
    }
    lines.push(`${head}{"role":"assistant","content":""},${JSON.stringify(done).slice(1)}\n`);
  }
  const delay = plan.delayMs;
  const stream = textStream(signal, async (w) => {
    for (const l of lines) {
      w.write(l);
      if (delay > 0 && !(await w.pause(delay))) return;
    }
  });
  return new Response(stream, { headers: { "content-type": "application/x-ndjson" } });
}

/** Starts the fake Ollama; see the file header for the endpoints and model behaviours. */
export function startFakeOllama(opts: FakeOllamaOptions = {}): FakeServer {
  const listed = [...new Set([...LISTED, ...(opts.models ?? [])].map(tagged))];
  const listedSet = new Set(listed);
  const known = (model: string) => listedSet.has(tagged(model)) || isBehaviour(behaviourOf(model));
  const notFound = (model: string) => `model '${model}' not found`;
  const noTools = (model: string) => `registry.ollama.ai/library/${tagged(model)} does not support tools`;

  return serveFake(async (req, url, body, invalidJson, signal) => {
    const route = `${req.method} ${url.pathname}`;
    const b = obj(body) ?? {};
    if (route === "GET /" || route === "HEAD /") return new Response("Ollama is running");
    if (route === "GET /api/version") return json({ version: OLLAMA_VERSION });
    if (route === "GET /api/tags") return json({ models: listed.map(tagEntry) });
    if (route === "GET /v1/models") {
      const created = Math.floor(Date.parse(MODIFIED_AT) / 1000);
      return json({
        object: "list",
        data: listed.map((id) => ({ id, object: "model", created, owned_by: "library" })),
      });
    }
    if (route === "POST /api/show") {
      const name = typeof b.model === "string" ? b.model : typeof b.name === "string" ? b.name : "";
      return known(name) ? json(showBody(name)) : json({ error: notFound(name) }, 404);
    }
    if (route === "POST /api/chat") {
      if (invalidJson) return json({ error: "invalid character in JSON body" }, 400);
      const model = b.model;
      if (typeof model !== "string" || model === "") return json({ error: "model is required" }, 400);
      if (!known(model)) return json({ error: notFound(model) }, 404);
      const behaviour = behaviourOf(model);
      const status = statusOf(behaviour);
      if (status !== undefined) return json({ error: `fake error ${status}` }, status);
      if (arr(b.messages).length === 0) {
        const done_reason = b.keep_alive === 0 || b.keep_alive === "0" ? "unload" : "load";
        const message = { role: "assistant", content: "" };
        return json({ model, created_at: new Date().toISOString(), message, done_reason, done: true });
      }
      if (behaviour === "no-tools-support" && arr(b.tools).length > 0) {
        return json({ error: noTools(model) }, 400);
      }
      if (behaviour === "hang") return await hang(signal);
      return nativeChat(b, model, signal, opts);
    }
    if (route === "POST /v1/chat/completions") {
      if (invalidJson) return errorResponse(400, "ollama", "invalid character in JSON body");
      const model = b.model;
      if (typeof model !== "string" || model === "") return errorResponse(400, "ollama", "model is required");
      if (!known(model)) return errorResponse(404, "ollama", notFound(model));
      const behaviour = behaviourOf(model);
      const status = statusOf(behaviour);
      if (status !== undefined) return errorResponse(status, "ollama", `fake error ${status}`);
      if (behaviour === "no-tools-support" && arr(b.tools).length > 0) {
        return errorResponse(400, "ollama", noTools(model));
      }
      if (behaviour === "hang") return await hang(signal);
      return openaiChat(planChat(b, behaviour, opts), b, model, "ollama", signal);
    }
    return new Response("404 page not found", { status: 404, headers: { "content-type": "text/plain" } });
  }, opts.record ?? true);
}
