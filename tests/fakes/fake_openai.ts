/**
 * Fake OpenAI-compatible upstream (and, with `openrouter: true`, a fake OpenRouter) for
 * API tests and the load benchmark. `Deno.serve` on 127.0.0.1, port 0.
 *
 * ```ts
 * const up = startFakeOpenAI({ apiKey: "sk-test" }); // up.baseUrl = `${up.url}/v1`
 * ...; await up.close();
 * ```
 *
 * Endpoints: `POST /v1/chat/completions` (JSON, or SSE `data: …\n\n` + `data: [DONE]`),
 * `GET /v1/models`, `GET /v1/models/{id}`. With `openrouter: true` the same live under
 * `/api/v1/`, `/api/v1/models` has OpenRouter's shape (`{data, total_count, links}` with
 * id, name, context_length, pricing as USD-per-token strings, …), streams start with a
 * `: OPENROUTER PROCESSING` comment, usage carries `cost`, errors are
 * `{"error":{"code":<int>,"message":…},"user_id":…}`.
 * When `apiKey` is set, chat (and OpenAI's models list) need `Authorization: Bearer <apiKey>`.
 * `stream_options.include_usage` (OpenRouter also `usage.include`) adds a last chunk with
 * `choices: []` and `usage`. `max_tokens` / `max_completion_tokens` truncate with
 * finish_reason `length`.
 *
 * Behaviour by model name (last `/` segment, `:tag` dropped; e.g. `x/tokens-5:free`):
 * - `echo` (and every listed model): answers the last user message, one word per chunk
 * - `tools`, `tools-with-id`: one tool call of the first request tool; `tools-parallel`:
 *   two calls (first two tools, or the only one twice). Arguments come from the tool's
 *   JSON schema: string `"<prop>-<n>"`, number n, boolean true, enum first value.
 *   Streamed as OpenAI deltas (index, id, type, name, then argument fragments).
 *   Once a `tool` message follows the last user message: text `Tool results: a; b`.
 *   Without tools in the request they behave like `echo`.
 * - `midstream-error`: two chunks, then `data: {"error": {...}}` (OpenRouter: a chunk with
 *   `error` and finish_reason `error`), no `[DONE]`; non-streaming: 500 / 502.
 * - `status-<code>`: answers that status (400..599) with an error body in the server's
 *   shape; 429 has `retry-after: 1`.
 * - `slow` / `slow-<ms>`: echo with `slowDelayMs` (default 50) or <ms> between chunks.
 * - `hang`: never answers (until the client aborts or the server closes).
 * - `length`: echo with finish_reason `length`; `thinking`: `reasoning` deltas first
 *   (OpenRouter/Ollama only); `json`: content is `JSON.stringify(response_format)`;
 *   `tokens-<N>`: N chunks `tok0`, ` tok1`, ….
 * Token counts are words: prompt = words of all message texts, completion = chunks
 * (+10 per tool call). Unknown models: 404 `model_not_found` (OpenRouter: 400).
 * `tokenDelayMs` delays every chunk of every model (benchmarks).
 */

// ── Shared plumbing (also used by fake_ollama.ts) ──────────────────────────────

/** One request as the fake saw it (`body` is parsed JSON, the raw text, or null). */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

export interface FakeServer {
  /** `http://127.0.0.1:<port>` (no path). */
  url: string;
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Handler of one request; `signal` aborts when the client goes away or the server closes. */
export type FakeRoute = (
  req: Request,
  url: URL,
  body: unknown,
  invalidJson: boolean,
  signal: AbortSignal,
) => Response | Promise<Response>;

/** Starts a fake on 127.0.0.1:0. `close()` ends streams and hanging requests first. */
export function serveFake(route: FakeRoute, record = true): FakeServer {
  const requests: RecordedRequest[] = [];
  const stop = new AbortController();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const text = req.body ? await req.text() : "";
    let body: unknown = null;
    let invalidJson = false;
    if (text !== "") {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
        invalidJson = true;
      }
    }
    if (record) {
      const headers = Object.fromEntries(req.headers);
      requests.push({ method: req.method, path: url.pathname + url.search, headers, body });
    }
    return await route(req, url, body, invalidJson, AbortSignal.any([stop.signal, req.signal]));
  });
  const port = server.addr.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    async close() {
      stop.abort();
      await server.shutdown();
    },
  };
}

/** Resolves after `ms`, or at once when `signal` aborts (no timer is left behind). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Writes text into a streamed body; writes are coalesced until `pause` or the end. */
export interface StreamWriter {
  write(text: string): void;
  /** Flushes, then waits `ms`; false when the stream was cancelled meanwhile. */
  pause(ms: number): Promise<boolean>;
}

/** A byte stream produced by `run`; cancelled by the client or by `signal`. */
export function textStream(signal: AbortSignal, run: (w: StreamWriter) => Promise<void>): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  const cancelled = new AbortController();
  const sig = AbortSignal.any([signal, cancelled.signal]);
  let buf = "";
  let closed = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const flush = () => {
        if (buf !== "" && !closed) controller.enqueue(enc.encode(buf));
        buf = "";
      };
      const w: StreamWriter = {
        write(text) {
          buf += text;
        },
        async pause(ms) {
          flush();
          if (ms > 0) await sleep(ms, sig);
          return !sig.aborted;
        },
      };
      run(w).then(flush, () => {}).finally(() => {
        if (closed) return;
        closed = true;
        try {
          controller.close();
        } catch { /* already errored */ }
      });
    },
    cancel() {
      closed = true;
      cancelled.abort();
    },
  });
}

/** Waits until `signal` aborts, then answers 499 (nobody is listening any more). */
export async function hang(signal: AbortSignal): Promise<Response> {
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
  return new Response(null, { status: 499 });
}

export function json(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json", ...headers } });
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/** Random base62 string of `n` characters. */
export function randomId(n: number, alphabet = ALNUM): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  let s = "";
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

// ── Behaviour plans (shared with fake_ollama.ts) ───────────────────────────────

export type Obj = Record<string, unknown>;
export const obj = (v: unknown): Obj | undefined =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? v as Obj : undefined;
export const arr = (v: unknown): unknown[] => Array.isArray(v) ? v : [];

export interface ToolCallPlan {
  name: string;
  args: Obj;
}

/** What a fake model answers, independent of the wire format. */
export interface ChatPlan {
  pieces: string[];
  thinking: string[];
  toolCalls: ToolCallPlan[];
  finish: "stop" | "length" | "tool_calls";
  /** Emit a mid-stream error after this many content pieces. */
  errorAfter: number | null;
  delayMs: number;
  promptTokens: number;
  completionTokens: number;
}

export interface PlanOptions {
  tokenDelayMs?: number;
  slowDelayMs?: number;
}

const FIXED = new Set([
  "echo",
  "tools",
  "tools-parallel",
  "tools-with-id",
  "no-tools-support",
  "midstream-error",
  "slow",
  "hang",
  "length",
  "thinking",
  "json",
]);

/** The behaviour a model name selects: last `/` segment without `:tag`. */
export function behaviourOf(model: string): string {
  const last = model.slice(model.lastIndexOf("/") + 1);
  const colon = last.indexOf(":");
  return colon >= 0 ? last.slice(0, colon) : last;
}

/** Whether `behaviour` names a fake behaviour (so the model needs no listing). */
export function isBehaviour(behaviour: string): boolean {
  return FIXED.has(behaviour) || /^(tokens-\d+|slow-\d+|status-\d{3})$/.test(behaviour);
}

/** The status a `status-<code>` model answers, if any. */
export function statusOf(behaviour: string): number | undefined {
  const m = /^status-(\d{3})$/.exec(behaviour);
  const code = m ? Number(m[1]) : NaN;
  return code >= 400 && code <= 599 ? code : undefined;
}

/** Text of a message `content`: a string, or the `text` of its text parts. */
export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  return arr(content).map((p) => obj(p)?.text).filter((t) => typeof t === "string").join(" ");
}

/** Words with their leading whitespace, e.g. `"a b"` → `["a", " b"]`. */
export const words = (text: string): string[] => text.match(/\s*\S+/g) ?? [];

function sampleArgs(parameters: unknown, i: number): Obj {
  const out: Obj = {};
  for (const [k, s] of Object.entries(obj(obj(parameters)?.properties) ?? {})) {
    const t = obj(s)?.type;
    const choices = arr(obj(s)?.enum);
    out[k] = choices.length > 0
      ? choices[i % choices.length]
      : t === "integer" || t === "number"
      ? i + 1
      : t === "boolean"
      ? true
      : t === "array"
      ? []
      : t === "object"
      ? {}
      : `${k}-${i + 1}`;
  }
  return out;
}

/** Builds the answer of model behaviour `b` to a chat request body (either wire format). */
export function planChat(body: Obj, b: string, opts: PlanOptions): ChatPlan {
  const messages = arr(body.messages).map(obj).filter((m): m is Obj => m !== undefined);
  const promptTokens = messages.reduce((n, m) => n + words(textOf(m.content)).length, 0);
  const lastUser = messages.findLastIndex((m) => m.role === "user");
  const plan: ChatPlan = {
    pieces: words(textOf(messages[lastUser]?.content)),
    thinking: [],
    toolCalls: [],
    finish: "stop",
    errorAfter: null,
    delayMs: opts.tokenDelayMs ?? 0,
    promptTokens,
    completionTokens: 0,
  };
  const tools = arr(body.tools).map((t) => obj(obj(t)?.function)).filter((f): f is Obj => f !== undefined);
  const tokens = /^tokens-(\d+)$/.exec(b);
  const slow = /^slow(?:-(\d+))?$/.exec(b);
  if (b === "tools" || b === "tools-parallel" || b === "tools-with-id") {
    const results = messages.slice(lastUser + 1).filter((m) => m.role === "tool").map((m) => textOf(m.content));
    if (results.length > 0) plan.pieces = words(`Tool results: ${results.join("; ")}`);
    else if (tools.length > 0) {
      const n = b === "tools-parallel" ? 2 : 1;
      for (let i = 0; i < n; i++) {
        const f = tools[Math.min(i, tools.length - 1)];
        plan.toolCalls.push({ name: typeof f?.name === "string" ? f.name : "tool", args: sampleArgs(f?.parameters, i) });
      }
      plan.pieces = [];
      plan.finish = "tool_calls";
    }
  } else if (b === "midstream-error") {
    plan.pieces = words("partial answer before the failure");
    plan.errorAfter = 2;
  } else if (slow) plan.delayMs = slow[1] ? Number(slow[1]) : opts.slowDelayMs ?? 50;
  else if (b === "length") plan.finish = "length";
  else if (b === "thinking" && body.think !== false && body.reasoning_effort !== "none") {
    plan.thinking = words("Let me think about that.");
  } else if (b === "json") plan.pieces = [JSON.stringify(body.format ?? body.response_format ?? null)];
  else if (tokens) plan.pieces = Array.from({ length: Number(tokens[1]) }, (_, i) => i === 0 ? "tok0" : ` tok${i}`);
  const limit = [body.max_completion_tokens, body.max_tokens, obj(body.options)?.num_predict]
    .find((v) => typeof v === "number" && v >= 0) as number | undefined;
  if (limit !== undefined && plan.finish !== "tool_calls" && plan.pieces.length > limit) {
    plan.pieces = plan.pieces.slice(0, limit);
    plan.finish = "length";
  }
  plan.completionTokens = plan.pieces.length + plan.thinking.length + 10 * plan.toolCalls.length;
  return plan;
}

// ── OpenAI wire format (also Ollama's /v1/chat/completions) ────────────────────

/** `ollama`: Ollama's OpenAI-compatible flavour (no refusal/logprobs, whole tool calls). */
export type Flavour = "openai" | "openrouter" | "ollama";

/** USD per token. */
export interface Price {
  prompt: number;
  completion: number;
}

const round = (n: number) => Number(n.toPrecision(12));

function usageOf(plan: ChatPlan, flavour: Flavour, price: Price): Obj {
  const { promptTokens: p, completionTokens: c } = plan;
  const u: Obj = { prompt_tokens: p, completion_tokens: c, total_tokens: p + c };
  if (flavour === "ollama") return u;
  u.prompt_tokens_details = { cached_tokens: 0, audio_tokens: 0 };
  u.completion_tokens_details = {
    reasoning_tokens: plan.thinking.length,
    audio_tokens: 0,
    accepted_prediction_tokens: 0,
    rejected_prediction_tokens: 0,
  };
  if (flavour === "openrouter") {
    const pc = round(p * price.prompt), cc = round(c * price.completion);
    u.cost = round(pc + cc);
    u.is_byok = false;
    u.cost_details = { upstream_inference_cost: null, upstream_inference_prompt_cost: pc, upstream_inference_completions_cost: cc };
  }
  return u;
}

const OPENAI_ERRORS: Record<number, [string, string, string | null]> = {
  400: ["Invalid request.", "invalid_request_error", null],
  401: ["Incorrect API key provided.", "invalid_request_error", "invalid_api_key"],
  402: ["You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota"],
  403: ["You are not allowed to sample from this model.", "invalid_request_error", "model_not_permitted"],
  404: ["The model does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"],
  429: ["Rate limit reached for requests.", "requests", "rate_limit_exceeded"],
  500: ["The server had an error while processing your request. Sorry about that!", "server_error", null],
  502: ["Bad gateway.", "server_error", null],
  503: ["The engine is currently overloaded, please try again later.", "server_error", null],
};
const OPENROUTER_ERRORS: Record<number, string> = {
  400: "Invalid request parameters",
  401: "No auth credentials found",
  402: "Insufficient credits. Add more using https://openrouter.ai/credits",
  403: "Only management keys can perform this operation",
  404: "Resource not found",
  408: "Operation timed out. Please try again later.",
  429: "Rate limit exceeded",
  500: "Internal Server Error",
  502: "Provider returned error",
  503: "Service temporarily unavailable",
};

/** An error answer in the flavour's shape; 429 carries `retry-after: 1`. */
export function errorResponse(status: number, flavour: Flavour, message?: string, code?: string | null): Response {
  const headers: Record<string, string> = status === 429 ? { "retry-after": "1", "x-ratelimit-remaining-requests": "0" } : {};
  if (flavour === "openrouter") {
    const error: Obj = { code: status, message: message ?? OPENROUTER_ERRORS[status] ?? `Upstream error ${status}` };
    if (status === 502) error.metadata = { provider_name: "OpenAI", raw: "upstream error" };
    return json({ error, user_id: "user_fake" }, status, headers);
  }
  const [msg, type, defCode] = OPENAI_ERRORS[status] ?? [
    `Upstream error ${status}`,
    status >= 500 ? "server_error" : "invalid_request_error",
    null,
  ];
  const ollamaType = status === 400 ? "invalid_request_error" : status === 404 ? "not_found_error" : "api_error";
  const error = {
    message: message ?? msg,
    type: flavour === "ollama" ? ollamaType : type,
    param: null,
    code: code === undefined ? (flavour === "ollama" ? null : defCode) : code,
  };
  return json({ error }, status, headers);
}

/** Answers `plan` as an OpenAI chat completion (JSON, or SSE when `body.stream`). */
export function openaiChat(
  plan: ChatPlan,
  body: Obj,
  model: string,
  flavour: Flavour,
  signal: AbortSignal,
  price: Price = { prompt: 0.000001, completion: 0.000002 },
): Response {
  const ollama = flavour === "ollama", openrouter = flavour === "openrouter";
  const id = ollama ? `chatcmpl-${Math.floor(Math.random() * 1000)}` : `chatcmpl-${randomId(29)}`;
  const created = Math.floor(Date.now() / 1000);
  const fp = ollama ? "fp_ollama" : "fp_fake0001";
  const calls = plan.toolCalls.map((c, index) => ({
    index,
    id: `call_${ollama ? randomId(8, "abcdefghijklmnopqrstuvwxyz0123456789") : randomId(24)}`,
    type: "function",
    function: { name: c.name, arguments: JSON.stringify(c.args) },
  }));
  const usage = usageOf(plan, flavour, price);
  const extra: Obj = openrouter ? { provider: "OpenAI" } : {};
  if (body.stream !== true) {
    if (plan.errorAfter !== null) return errorResponse(openrouter ? 502 : 500, flavour);
    const message: Obj = { role: "assistant", content: calls.length > 0 && !ollama ? null : plan.pieces.join("") };
    if (!ollama) message.refusal = null;
    if (calls.length > 0) message.tool_calls = calls.map(({ index: _, ...c }) => c);
    if (plan.thinking.length > 0 && flavour !== "openai") message.reasoning = plan.thinking.join("");
    const choice: Obj = ollama
      ? { index: 0, message, finish_reason: plan.finish }
      : { index: 0, message, logprobs: null, finish_reason: plan.finish };
    const head = { id, object: "chat.completion", created, model, ...extra, system_fingerprint: fp };
    return json({ ...head, choices: [choice], usage });
  }

  const includeUsage = obj(body.stream_options)?.include_usage === true ||
    (openrouter && obj(body.usage)?.include === true);
  const pre = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${
    JSON.stringify(model)
  },${openrouter ? '"provider":"OpenAI",' : ""}"system_fingerprint":"${fp}","choices":[`;
  const tail = includeUsage && !ollama ? `],"usage":null}\n\n` : `]}\n\n`;
  const chunk = (delta: string, finish: string | null = null) =>
    `${pre}{"index":0,"delta":${delta},${ollama ? "" : '"logprobs":null,'}"finish_reason":${
      finish === null ? "null" : `"${finish}"`
    }}${tail}`;
  const role = ollama ? `"role":"assistant","content":"",` : "";
  const events: string[] = [];
  if (openrouter) events.push(": OPENROUTER PROCESSING\n\n");
  if (!ollama) events.push(chunk(`{"role":"assistant","content":${calls.length > 0 ? "null" : '""'},"refusal":null}`));
  for (const t of plan.thinking) events.push(chunk(`{${role}"reasoning":${JSON.stringify(t)}}`));
  for (const [i, p] of plan.pieces.entries()) {
    if (i === plan.errorAfter) break;
    events.push(chunk(ollama ? `{"role":"assistant","content":${JSON.stringify(p)}}` : `{"content":${JSON.stringify(p)}}`));
  }
  if (plan.errorAfter !== null) {
    events.push(
      openrouter
        ? `${pre}{"index":0,"delta":{"content":""},"finish_reason":"error"}],"error":{"code":502,"message":"Provider returned error","metadata":{"error_type":"provider_unavailable"}}}\n\n`
        : `data: {"error":${
          JSON.stringify({
            message: ollama ? "an error was encountered while running the model" : OPENAI_ERRORS[500]![0],
            type: ollama ? "api_error" : "server_error",
            param: null,
            code: null,
          })
        }}\n\n`,
    );
  } else {
    if (ollama && calls.length > 0) events.push(chunk(`{${role}"tool_calls":${JSON.stringify(calls)}}`));
    else {
      for (const c of calls) {
        const { arguments: args, name } = c.function;
        const first = { index: c.index, id: c.id, type: "function", function: { name, arguments: "" } };
        events.push(chunk(`{"tool_calls":[${JSON.stringify(first)}]}`));
        for (let k = 0; k < args.length; k += 10) {
          const frag = { index: c.index, function: { arguments: args.slice(k, k + 10) } };
          events.push(chunk(`{"tool_calls":[${JSON.stringify(frag)}]}`));
        }
      }
    }
    events.push(chunk(ollama ? `{"role":"assistant","content":""}` : "{}", plan.finish));
    if (includeUsage) events.push(`${pre}],"usage":${JSON.stringify(usage)}}\n\n`);
    events.push("data: [DONE]\n\n");
  }
  const delay = plan.delayMs;
  const stream = textStream(signal, async (w) => {
    for (const e of events) {
      w.write(e);
      if (delay > 0 && !(await w.pause(delay))) return;
    }
  });
  return new Response(stream, { headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" } });
}

// ── The fake OpenAI / OpenRouter server ────────────────────────────────────────

export interface FakeOpenAIOptions extends PlanOptions {
  /** Require `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Serve under /api/v1 in OpenRouter's shapes. */
  openrouter?: boolean;
  /** Record requests in `requests` (default true; turn off for benchmarks). */
  record?: boolean;
  /** Extra model ids to list (they answer like `echo` unless named after a behaviour). */
  models?: string[];
}

export interface FakeOpenAI extends FakeServer {
  /** `${url}/v1`, or `${url}/api/v1` with `openrouter`. */
  baseUrl: string;
}

/** [id, name, context_length, prompt USD/token, completion USD/token, created] */
type CatalogEntry = [string, string, number, string, string, number];
const CATALOG: CatalogEntry[] = [
  ["openai/gpt-4o-mini", "OpenAI: GPT-4o-mini", 128000, "0.00000015", "0.0000006", 1721260800],
  ["anthropic/claude-3.5-sonnet", "Anthropic: Claude 3.5 Sonnet", 200000, "0.000003", "0.000015", 1718841600],
  ["meta-llama/llama-3.1-8b-instruct", "Meta: Llama 3.1 8B Instruct", 131072, "0.00000002", "0.00000005", 1721692800],
];
const LISTED_BEHAVIOURS = ["echo", "tools-parallel", "midstream-error", "slow"];

function openrouterModel([id, name, ctx, prompt, completion, created]: CatalogEntry): Obj {
  const tokenizer = id.startsWith("openai/") ? "GPT" : id.startsWith("anthropic/") ? "Claude" : "Other";
  return {
    id,
    canonical_slug: id,
    hugging_face_id: null,
    name,
    created,
    description: `${name} (fake)`,
    context_length: ctx,
    architecture: { modality: "text->text", input_modalities: ["text"], output_modalities: ["text"], tokenizer, instruct_type: null },
    pricing: { prompt, completion, request: "0", image: "0" },
    top_provider: { context_length: ctx, max_completion_tokens: 16384, is_moderated: false },
    per_request_limits: null,
    supported_parameters: ["max_tokens", "temperature", "top_p", "stop", "seed", "tools", "tool_choice", "response_format"],
    default_parameters: null,
    supported_voices: null,
    knowledge_cutoff: null,
    expiration_date: null,
    links: { details: `/api/v1/models/${id}/endpoints` },
  };
}

const openaiModel = ([id, , , , , created]: CatalogEntry): Obj => ({
  id,
  object: "model",
  created,
  owned_by: id.includes("/") ? id.slice(0, id.indexOf("/")) : "system",
});

/** Starts the fake OpenAI (or OpenRouter) upstream; see the file header for behaviours. */
export function startFakeOpenAI(opts: FakeOpenAIOptions = {}): FakeOpenAI {
  const flavour: Flavour = opts.openrouter ? "openrouter" : "openai";
  const base = opts.openrouter ? "/api/v1" : "/v1";
  const catalog: CatalogEntry[] = [
    ...CATALOG,
    ...[...LISTED_BEHAVIOURS, ...(opts.models ?? [])].map((id): CatalogEntry => [id, id, 32768, "0.000001", "0.000002", 1700000000]),
  ];
  const byId = new Map(catalog.map((m) => [m[0], m]));
  const authed = (req: Request) => !opts.apiKey || req.headers.get("authorization") === `Bearer ${opts.apiKey}`;
  const unauthorized = (req: Request) =>
    errorResponse(401, flavour, req.headers.has("authorization") ? undefined : "You didn't provide an API key.");

  const server = serveFake(async (req, url, body, invalidJson, signal) => {
    const rest = url.pathname.startsWith(`${base}/`) ? url.pathname.slice(base.length) : "";
    if (req.method === "GET" && rest === "/models") {
      if (flavour === "openai" && !authed(req)) return unauthorized(req);
      return json(
        opts.openrouter
          ? { data: catalog.map(openrouterModel), total_count: catalog.length, links: { next: null } }
          : { object: "list", data: catalog.map(openaiModel) },
      );
    }
    if (req.method === "GET" && rest.startsWith("/models/")) {
      if (flavour === "openai" && !authed(req)) return unauthorized(req);
      const m = byId.get(decodeURIComponent(rest.slice("/models/".length)));
      if (m) return json(opts.openrouter ? { data: openrouterModel(m) } : openaiModel(m));
      return errorResponse(404, flavour);
    }
    if (req.method === "POST" && rest === "/chat/completions") {
      if (!authed(req)) return unauthorized(req);
      const b = obj(body);
      if (invalidJson || !b) return errorResponse(400, flavour, "We could not parse the JSON body of your request.");
      const model = b.model;
      if (typeof model !== "string") return errorResponse(400, flavour, "you must provide a model parameter");
      if (!Array.isArray(b.messages)) return errorResponse(400, flavour, "Missing required parameter: 'messages'.");
      const behaviour = behaviourOf(model);
      const entry = byId.get(model);
      if (!entry && !isBehaviour(behaviour)) {
        return opts.openrouter
          ? errorResponse(400, flavour, `${model} is not a valid model ID`)
          : errorResponse(404, flavour, `The model \`${model}\` does not exist or you do not have access to it.`);
      }
      const status = statusOf(behaviour);
      if (status !== undefined) return errorResponse(status, flavour);
      if (behaviour === "hang") return await hang(signal);
      const price = entry ? { prompt: Number(entry[3]), completion: Number(entry[4]) } : undefined;
      return openaiChat(planChat(b, behaviour, opts), b, model, flavour, signal, price);
    }
    return errorResponse(404, flavour, `Invalid URL (${req.method} ${url.pathname})`, null);
  }, opts.record ?? true);
  return { ...server, baseUrl: server.url + base };
}
