/**
 * Any OpenAI-compatible server (vLLM, llama.cpp's server, LM Studio, OpenAI itself)
 * by base URL and key. The request is forwarded as sent (model replaced, usage
 * always requested on streams so that accounting sees it); answers are normalised
 * to the official shapes; upstream errors keep their message.
 * OpenRouter is this provider with a few attributes set (see openrouter.ts).
 */
import {
  GatewayError,
  GatewayTimeoutError,
  InvalidRequestError,
  ModelNotFoundError,
  PermissionDeniedError,
  RateLimitError,
  ServiceUnavailableError,
  UpstreamError,
} from "../errors.ts";
import { completionId, nowSeconds } from "../ids.ts";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  FinishReason,
} from "../protocol.ts";
import { createPooledClient, mapBodyError, readBody, upstreamFetch, type UpstreamOptions } from "./http.ts";
import { readSseData } from "./lines.ts";
import { fanOut, mergeChoiceStreams, sumUsage } from "./merge.ts";
import { enforceParams, type ParamTable } from "./params.ts";
import type { CallContext, Provider, ProviderHealth, ProviderKind, ProviderModel } from "./provider.ts";

export interface OpenAICompatOptions {
  name: string;
  kind?: ProviderKind;
  /** Base URL including the version path, e.g. `http://localhost:8000/v1`. */
  baseUrl: string;
  apiKey?: string;
  /** Whether a key is required (OpenRouter); without it the provider is unconfigured. */
  requireKey?: boolean;
  headers?: Record<string, string>;
  timeoutMs: number;
  streamIdleTimeoutMs: number;
  /** What this upstream does not support (rejected with 400 before any request). */
  params?: ParamTable;
  /** Emulate `n > 1` with n parallel calls (for upstreams without `n`). */
  emulateN?: boolean;
  /** Last changes to the upstream body (translations of what the upstream names differently). */
  prepare?: (body: Record<string, unknown>) => void;
  /** Parses the upstream's model list (OpenRouter adds pricing and context length). */
  parseModels?: (body: unknown) => ProviderModel[];
}

const FINISH: ReadonlySet<string> = new Set([
  "stop",
  "length",
  "tool_calls",
  "content_filter",
  "function_call",
]);

function finishReason(v: unknown): FinishReason | null {
  if (v === null || v === undefined) return null;
  return FINISH.has(v as string) ? v as FinishReason : "stop";
}

/** The `error` object of an upstream body, in whatever shape it came. */
function upstreamErrorOf(
  body: unknown,
): { message: string; code?: unknown; param?: unknown; type?: unknown } {
  if (typeof body === "string") return { message: body.slice(0, 500) };
  const err = (body as { error?: unknown })?.error;
  if (typeof err === "string") return { message: err };
  if (err && typeof err === "object") {
    const e = err as Record<string, unknown>;
    let message = typeof e.message === "string" ? e.message : JSON.stringify(e);
    const raw = (e.metadata as Record<string, unknown> | undefined)?.raw;
    if (typeof raw === "string" && raw && !message.includes(raw)) {
      message = `${message} (${raw.slice(0, 300)})`;
    }
    return { message, code: e.code, param: e.param, type: e.type };
  }
  return { message: JSON.stringify(body).slice(0, 500) };
}

export class OpenAICompatProvider implements Provider {
  readonly name: string;
  readonly kind: ProviderKind;
  readonly configured: boolean;
  readonly configProblem?: string;
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly client = createPooledClient();

  constructor(private readonly opts: OpenAICompatOptions) {
    this.name = opts.name;
    this.kind = opts.kind ?? "openai";
    this.base = opts.baseUrl.replace(/\/+$/, "");
    this.configured = !opts.requireKey || !!opts.apiKey;
    if (!this.configured) this.configProblem = `no API key configured for provider '${opts.name}'`;
    this.headers = { "content-type": "application/json", ...opts.headers };
    if (opts.apiKey) this.headers.authorization = `Bearer ${opts.apiKey}`;
  }

  private http(signal?: AbortSignal): UpstreamOptions {
    return { provider: this.name, timeoutMs: this.opts.timeoutMs, signal, client: this.client };
  }

  private unconfigured(): GatewayError {
    return new ServiceUnavailableError(
      `Provider '${this.name}' is not configured: ${this.configProblem}. See the README's configuration section.`,
    );
  }

  /** Maps an upstream error status to a gateway error that keeps the upstream message. */
  errorFromStatus(status: number, body: unknown, model: string, headers?: Headers): GatewayError {
    const up = upstreamErrorOf(body);
    const msg = `Provider '${this.name}': ${up.message}`;
    const param = typeof up.param === "string" ? up.param : null;
    const code = typeof up.code === "string" ? up.code : null;
    switch (status) {
      case 400:
      case 422:
        return new InvalidRequestError(msg, { param, code: code ?? "invalid_request" });
      case 401:
        return new UpstreamError(
          `Provider '${this.name}' rejected the gateway's credentials: ${up.message}`,
          {
            code: "upstream_auth_failed",
          },
        );
      case 402:
        return new GatewayError(402, msg, { type: "insufficient_quota", code: "upstream_payment_required" });
      case 403:
        return new PermissionDeniedError(msg, { code: code ?? "upstream_forbidden" });
      case 404:
        return new ModelNotFoundError(
          `The model '${model}' does not exist on provider '${this.name}': ${up.message}`,
        );
      case 408:
      case 504:
        return new GatewayTimeoutError(msg);
      case 413:
        return new GatewayError(413, msg, { type: "invalid_request_error", code: "request_too_large" });
      case 429: {
        const retry = Number(headers?.get("retry-after") ?? "1");
        return new RateLimitError(msg, Number.isFinite(retry) ? retry : 1, {
          code: code ?? "rate_limit_exceeded",
        });
      }
      case 503:
        return new ServiceUnavailableError(msg);
      default:
        return new UpstreamError(msg, { status: 502 });
    }
  }

  private body(req: ChatCompletionRequest, model: string, stream: boolean): string {
    const out: Record<string, unknown> = { ...req, model, stream };
    if (stream) out.stream_options = { ...req.stream_options, include_usage: true };
    else delete out.stream_options;
    this.opts.prepare?.(out);
    return JSON.stringify(out);
  }

  /** How many upstream calls a request needs (n emulated), after checking parameters. */
  private callsFor(req: ChatCompletionRequest): number {
    if (this.opts.params) enforceParams(req, this.opts.params, this.name);
    return this.opts.emulateN && (req.n ?? 1) > 1 ? req.n! : 1;
  }

  private async post(
    req: ChatCompletionRequest,
    model: string,
    stream: boolean,
    ctx: CallContext,
  ): Promise<Response> {
    if (!this.configured) throw this.unconfigured();
    const res = await upstreamFetch(`${this.base}/chat/completions`, {
      method: "POST",
      headers: this.headers,
      body: this.body(req, model, stream),
    }, this.http(ctx.signal));
    if (!res.ok) {
      const body = await readBody(res).catch(() => "");
      throw this.errorFromStatus(res.status, body, model, res.headers);
    }
    return res;
  }

  async complete(req: ChatCompletionRequest, model: string, ctx: CallContext): Promise<ChatCompletion> {
    const n = this.callsFor(req);
    if (n === 1) return this.completeOne(req, model, ctx);
    const single = { ...req, n: undefined };
    const all = await fanOut(n, ctx.signal, (signal) => this.completeOne(single, model, { ...ctx, signal }));
    const out = all[0]!;
    out.choices = all.map((r, index) => ({ ...r.choices[0]!, index }));
    out.usage = sumUsage(
      all.map((r) => r.usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }),
    );
    return out;
  }

  private async completeOne(
    req: ChatCompletionRequest,
    model: string,
    ctx: CallContext,
  ): Promise<ChatCompletion> {
    const res = await this.post(req, model, false, ctx);
    let body: Record<string, unknown>;
    try {
      body = await res.json();
    } catch (err) {
      throw mapBodyError(err, this.http(ctx.signal), "an answer that is not JSON");
    }
    if (body.error) throw this.errorFromStatus(502, body, model);
    if (!Array.isArray(body.choices)) {
      throw new UpstreamError(`Provider '${this.name}' sent an answer without choices.`);
    }
    const out = body as ChatCompletion;
    out.id = typeof body.id === "string" && body.id.startsWith("chatcmpl") ? body.id : completionId();
    out.object = "chat.completion";
    if (typeof out.created !== "number") out.created = nowSeconds();
    out.model = ctx.responseModel;
    for (const c of out.choices) {
      c.message ??= { role: "assistant", content: null, refusal: null };
      c.message.role = "assistant";
      if (c.message.content === undefined) c.message.content = null;
      if (c.message.refusal === undefined) c.message.refusal = null;
      if (
        c.message.reasoning !== undefined && c.message.reasoning_content === undefined && c.message.reasoning
      ) {
        c.message.reasoning_content = c.message.reasoning as string;
      }
      c.finish_reason = finishReason(c.finish_reason) ?? "stop";
      if (c.logprobs === undefined) c.logprobs = null;
    }
    return out;
  }

  async stream(
    req: ChatCompletionRequest,
    model: string,
    ctx: CallContext,
  ): Promise<AsyncIterable<ChatCompletionChunk>> {
    const n = this.callsFor(req);
    const id = completionId();
    if (n === 1) return this.chunks(await this.post(req, model, true, ctx), model, ctx, id);
    const single = { ...req, n: undefined };
    const responses = await fanOut(
      n,
      ctx.signal,
      (signal) => this.post(single, model, true, { ...ctx, signal }),
      (res) => res.body?.cancel().catch(() => {}),
    );
    return mergeChoiceStreams(responses.map((res) => this.chunks(res, model, ctx, id)));
  }

  private async *chunks(
    res: Response,
    model: string,
    ctx: CallContext,
    id: string,
  ): AsyncGenerator<ChatCompletionChunk> {
    try {
      for await (const data of readSseData(res.body!, this.opts.streamIdleTimeoutMs)) {
        if (data === "[DONE]") return;
        let chunk: ChatCompletionChunk & { error?: unknown };
        try {
          chunk = JSON.parse(data);
        } catch {
          throw new UpstreamError(`Provider '${this.name}' sent a stream event that is not JSON.`);
        }
        if (chunk.error) {
          const status = Number((chunk.error as { code?: unknown }).code);
          throw this.errorFromStatus(status >= 400 && status < 600 ? status : 502, chunk, model);
        }
        chunk.id = id;
        chunk.object = "chat.completion.chunk";
        chunk.model = ctx.responseModel;
        if (typeof chunk.created !== "number") chunk.created = nowSeconds();
        const choices = chunk.choices ?? (chunk.choices = []);
        for (const c of choices) {
          c.delta ??= {};
          if (c.finish_reason !== null) c.finish_reason = finishReason(c.finish_reason);
          if (
            c.delta.reasoning !== undefined && c.delta.reasoning_content === undefined && c.delta.reasoning
          ) {
            c.delta.reasoning_content = c.delta.reasoning as string;
          }
        }
        yield chunk;
      }
    } catch (err) {
      throw mapBodyError(err, this.http(ctx.signal), "a broken stream");
    }
  }

  async listModels(signal?: AbortSignal): Promise<ProviderModel[]> {
    if (!this.configured) throw this.unconfigured();
    const res = await upstreamFetch(`${this.base}/models`, { headers: this.headers }, {
      ...this.http(signal),
      timeoutMs: 15_000,
    });
    const body = await readBody(res);
    if (!res.ok) throw this.errorFromStatus(res.status, body, "");
    if (this.opts.parseModels) return this.opts.parseModels(body);
    const data = (body as { data?: { id?: string; owned_by?: string; created?: number }[] })?.data ?? [];
    return data.filter((m) => typeof m.id === "string").map((m) => ({
      id: m.id!,
      ownedBy: m.owned_by ?? this.name,
      created: typeof m.created === "number" ? m.created : 0,
    }));
  }

  async health(signal?: AbortSignal): Promise<ProviderHealth> {
    if (!this.configured) {
      return { name: this.name, kind: this.kind, status: "unconfigured", detail: this.configProblem };
    }
    const started = performance.now();
    try {
      const res = await upstreamFetch(`${this.base}/models`, { headers: this.headers }, {
        ...this.http(signal),
        timeoutMs: 5000,
      });
      await res.body?.cancel();
      const latencyMs = Math.round(performance.now() - started);
      if (!res.ok) {
        return { name: this.name, kind: this.kind, status: "error", detail: `HTTP ${res.status}`, latencyMs };
      }
      return { name: this.name, kind: this.kind, status: "ok", latencyMs };
    } catch (err) {
      return {
        name: this.name,
        kind: this.kind,
        status: "unreachable",
        detail: err instanceof Error ? err.message : String(err),
      };
    }
  }

  close(): void {
    this.client.close();
  }
}
