/**
 * OpenRouter: the OpenAI-compatible provider with OpenRouter's attributes — a
 * required key, the optional `HTTP-Referer` / `X-Title` attribution headers, and a
 * model list that carries context length and per-token pricing (used for routing
 * and for cost when a response has no `usage.cost`).
 */
import { OpenAICompatProvider } from "./openai_compat.ts";
import type { ParamTable } from "./params.ts";
import type { ProviderModel } from "./provider.ts";

export interface OpenRouterOptions {
  name?: string;
  baseUrl?: string;
  apiKey?: string;
  referer?: string;
  title?: string;
  timeoutMs: number;
  streamIdleTimeoutMs: number;
}

/**
 * What differs from OpenAI on OpenRouter (everything else in OpenRouter's ChatRequest
 * schema is passed through as sent, provider extras such as `provider`, `models`,
 * `plugins`, `transforms`, `route` included).
 */
export const OPENROUTER_PARAMS: ParamTable = {
  n: { support: "emulated", note: "n parallel upstream calls, merged into n choices" },
  stream_options: {
    support: "translated",
    note: "usage is always requested; the usage chunk is sent when asked",
  },
  web_search_options: { support: "translated", note: 'OpenRouter\'s web plugin (plugins: [{id: "web"}])' },
  functions: { support: "rejected", note: "legacy functions: use tools" },
  function_call: { support: "rejected", note: "legacy function_call: use tool_choice" },
  audio: { support: "rejected", note: "no audio output through OpenRouter's chat API" },
  verbosity: { support: "rejected", note: "not in OpenRouter's chat API" },
  moderation: { support: "rejected", note: "not in OpenRouter's chat API" },
};

/** Ollama's extras are not sent; web_search_options → OpenRouter's web plugin. */
function prepare(body: Record<string, unknown>): void {
  delete body.options;
  delete body.keep_alive;
  delete body.think;
  const ws = body.web_search_options;
  if (ws === undefined) return;
  delete body.web_search_options;
  if (ws === null) return;
  const plugins = Array.isArray(body.plugins) ? [...body.plugins] : [];
  if (!plugins.some((p) => (p as { id?: string })?.id === "web")) plugins.push({ id: "web" });
  body.plugins = plugins;
}

export const OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1";

interface OpenRouterModel {
  id?: string;
  created?: number;
  context_length?: number | null;
  pricing?: { prompt?: string | number; completion?: string | number };
}

/** USD per token; undefined for OpenRouter's "-1" (variable pricing) or garbage. */
function price(v: string | number | undefined): number | undefined {
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** OpenRouter's `/models` body → provider models with pricing (USD per token). */
export function parseOpenRouterModels(body: unknown): ProviderModel[] {
  const data = (body as { data?: OpenRouterModel[] })?.data ?? [];
  return data.filter((m) => typeof m.id === "string").map((m) => {
    const owner = m.id!.includes("/") ? m.id!.slice(0, m.id!.indexOf("/")) : "openrouter";
    const out: ProviderModel = {
      id: m.id!,
      ownedBy: owner,
      created: typeof m.created === "number" ? m.created : 0,
    };
    if (typeof m.context_length === "number") out.contextLength = m.context_length;
    const prompt = price(m.pricing?.prompt);
    const completion = price(m.pricing?.completion);
    if (prompt !== undefined && completion !== undefined) out.pricing = { prompt, completion };
    return out;
  });
}

export function createOpenRouterProvider(opts: OpenRouterOptions): OpenAICompatProvider {
  const headers: Record<string, string> = {};
  if (opts.referer) headers["HTTP-Referer"] = opts.referer;
  if (opts.title) headers["X-Title"] = opts.title;
  return new OpenAICompatProvider({
    name: opts.name ?? "openrouter",
    kind: "openrouter",
    baseUrl: opts.baseUrl ?? OPENROUTER_BASE_URL,
    apiKey: opts.apiKey,
    requireKey: true,
    headers,
    timeoutMs: opts.timeoutMs,
    streamIdleTimeoutMs: opts.streamIdleTimeoutMs,
    parseModels: parseOpenRouterModels,
    params: OPENROUTER_PARAMS,
    emulateN: true,
    prepare,
  });
}
