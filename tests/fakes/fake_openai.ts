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
import {
  behaviourOf,
  type ChatPlan,
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

export type { FakeServer, RecordedRequest } from "./fake_common.ts";

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
    u.cost_details = {
      upstream_inference_cost: null,
      upstream_inference_prompt_cost: pc,
      upstream_inference_completions_cost: cc,
    };
  }
  return u;
}

const OPENAI_ERRORS: Record<number, [string, string, string | null]> = {
  400: ["Invalid request.", "invalid_request_error", null],
  401: ["Incorrect API key provided.", "invalid_request_error", "invalid_api_key"],
  402: [
    "You exceeded your current quota, please check your plan and billing details.",
    "insufficient_quota",
    "insufficient_quota",
  ],
  403: ["You are not allowed to sample from this model.", "invalid_request_error", "model_not_permitted"],
  404: [
    "The model does not exist or you do not have access to it.",
    "invalid_request_error",
    "model_not_found",
  ],
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
export function errorResponse(
  status: number,
  flavour: Flavour,
  message?: string,
  code?: string | null,
): Response {
  const headers: Record<string, string> = status === 429
    ? { "retry-after": "1", "x-ratelimit-remaining-requests": "0" }
    : {};
  if (flavour === "openrouter") {
    const error: Obj = {
      code: status,
      message: message ?? OPENROUTER_ERRORS[status] ?? `Upstream error ${status}`,
    };
    if (status === 502) error.metadata = { provider_name: "OpenAI", raw: "upstream error" };
    return json({ error, user_id: "user_fake" }, status, headers);
  }
  const [msg, type, defCode] = OPENAI_ERRORS[status] ?? [
    `Upstream error ${status}`,
    status >= 500 ? "server_error" : "invalid_request_error",
    null,
  ];
  const ollamaType = status === 400
    ? "invalid_request_error"
    : status === 404
    ? "not_found_error"
    : "api_error";
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
  signal: LazySignal,
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
    const message: Obj = {
      role: "assistant",
      content: calls.length > 0 && !ollama ? null : plan.pieces.join(""),
    };
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
  if (!ollama) {
    events.push(chunk(`{"role":"assistant","content":${calls.length > 0 ? "null" : '""'},"refusal":null}`));
  }
  if (flavour !== "openai") {
    for (const t of plan.thinking) events.push(chunk(`{${role}"reasoning":${JSON.stringify(t)}}`));
  }
  for (const [i, p] of plan.pieces.entries()) {
    if (i === plan.errorAfter) break;
    events.push(
      chunk(
        ollama ? `{"role":"assistant","content":${JSON.stringify(p)}}` : `{"content":${JSON.stringify(p)}}`,
      ),
    );
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
  return new Response(stream, {
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
  });
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
  [
    "meta-llama/llama-3.1-8b-instruct",
    "Meta: Llama 3.1 8B Instruct",
    131072,
    "0.00000002",
    "0.00000005",
    1721692800,
  ],
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
    architecture: {
      modality: "text->text",
      input_modalities: ["text"],
      output_modalities: ["text"],
      tokenizer,
      instruct_type: null,
    },
    pricing: { prompt, completion, request: "0", image: "0" },
    top_provider: { context_length: ctx, max_completion_tokens: 16384, is_moderated: false },
    per_request_limits: null,
    supported_parameters: [
      "max_tokens",
      "temperature",
      "top_p",
      "stop",
      "seed",
      "tools",
      "tool_choice",
      "response_format",
    ],
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
    ...[...LISTED_BEHAVIOURS, ...(opts.models ?? [])].map((
      id,
    ): CatalogEntry => [id, id, 32768, "0.000001", "0.000002", 1700000000]),
  ];
  const byId = new Map(catalog.map((m) => [m[0], m]));
  const authed = (req: Request) =>
    !opts.apiKey || req.headers.get("authorization") === `Bearer ${opts.apiKey}`;
  const unauthorized = (req: Request) =>
    errorResponse(
      401,
      flavour,
      req.headers.has("authorization") ? undefined : "You didn't provide an API key.",
    );

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
      if (invalidJson || !b) {
        return errorResponse(400, flavour, "We could not parse the JSON body of your request.");
      }
      const model = b.model;
      if (typeof model !== "string") return errorResponse(400, flavour, "you must provide a model parameter");
      if (!Array.isArray(b.messages)) {
        return errorResponse(400, flavour, "Missing required parameter: 'messages'.");
      }
      const behaviour = behaviourOf(model);
      const entry = byId.get(model);
      if (!entry && !isBehaviour(behaviour)) {
        return opts.openrouter
          ? errorResponse(400, flavour, `${model} is not a valid model ID`)
          : errorResponse(
            404,
            flavour,
            `The model \`${model}\` does not exist or you do not have access to it.`,
          );
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
