/**
 * The core orchestrator that every command shares (`serve`, `chat`, `bench`): one
 * chat request → route → admission (key permissions, budget, rate limits) →
 * provider call → usage record and limit settlement (off the hot path).
 */
import { allowedNames } from "./auth.ts";
import { type GatewayError, toGatewayError } from "./errors.ts";
import { nowSeconds } from "./ids.ts";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ModelObject,
  Usage,
} from "./protocol.ts";
import type { Provider } from "./providers/provider.ts";
import type { Route, Router } from "./router.ts";
import type { UsageRecord } from "./store/store.ts";

/** Who is calling (set by authentication; null key id = auth off). */
export interface Caller {
  keyId: string | null;
  keyName?: string;
}

export interface RequestContext {
  requestId: string;
  signal: AbortSignal;
  caller: Caller;
  /** performance.now() when the request arrived. */
  startedAt: number;
  /** Size of the request body, for the token estimate. */
  bodyBytes: number;
}

/** What happened, reported back to the admission when the call ends. */
export interface CallResult {
  usage: Usage;
  costUsd: number;
  status: number;
}

/** A granted admission: headers for the response, and a callback when the call ends. */
export interface Admission {
  headers: Record<string, string>;
  finish(result: CallResult): void;
}

/** Policy hook (keys, budgets, rate limits); throws a GatewayError to refuse. */
export interface Policy {
  admit(
    route: Route,
    req: ChatCompletionRequest,
    ctx: RequestContext,
    estimatedTokens: number,
  ): Promise<Admission>;
}

/** Where usage records go (the batched writer, the metrics). */
export interface UsageSink {
  record(r: UsageRecord): void;
}

export type ChatOutcome =
  | {
    kind: "json";
    route: Route;
    headers: Record<string, string>;
    completion: ChatCompletion;
    costUsd: number;
  }
  | {
    kind: "stream";
    route: Route;
    headers: Record<string, string>;
    chunks: AsyncIterable<ChatCompletionChunk>;
  };

export interface GatewayDeps {
  router: Router;
  pricing?: Record<string, { prompt: number; completion: number }>;
  policy?: Policy;
  usage?: UsageSink;
  metrics?: { observe(r: UsageRecord): void };
}

const NO_ADMISSION: Admission = { headers: {}, finish: () => {} };

/** The token estimate reserved before a call: prompt bytes / 4 plus the completion cap. */
export function estimateTokens(req: ChatCompletionRequest, bodyBytes: number): number {
  const cap = req.max_completion_tokens ?? req.max_tokens ?? 256;
  return Math.ceil(bodyBytes / 4) + cap * (req.n ?? 1);
}

export class Gateway {
  constructor(private readonly deps: GatewayDeps) {}

  get router(): Router {
    return this.deps.router;
  }

  /** USD cost: upstream `usage.cost`, else the provider's pricing, else configured pricing, else 0. */
  costOf(route: Route, usage: Usage): number {
    if (typeof usage.cost === "number" && Number.isFinite(usage.cost)) return usage.cost;
    const p = route.info?.pricing;
    if (p) return usage.prompt_tokens * p.prompt + usage.completion_tokens * p.completion;
    const table = this.deps.pricing ?? {};
    const c = table[route.model] ?? table[`${route.provider.name}/${route.upstreamModel}`] ??
      table[route.upstreamModel];
    if (c) return (usage.prompt_tokens * c.prompt + usage.completion_tokens * c.completion) / 1_000_000;
    return 0;
  }

  /** Runs one chat completion, streaming or not. Errors are thrown as GatewayErrors. */
  async chat(req: ChatCompletionRequest, ctx: RequestContext): Promise<ChatOutcome> {
    let route: Route;
    try {
      route = await this.deps.router.resolve(req.model);
    } catch (err) {
      this.rejected(req.model ?? "", ctx, err, req.stream === true);
      throw err;
    }
    const estimate = estimateTokens(req, ctx.bodyBytes);
    const admission = this.deps.policy
      ? await this.deps.policy.admit(route, req, ctx, estimate).catch((err) => {
        this.account(
          route,
          ctx,
          false,
          emptyUsage(),
          toGatewayError(err).status,
          toGatewayError(err),
          null,
          false,
        );
        throw err;
      })
      : NO_ADMISSION;
    const call = { signal: ctx.signal, requestId: ctx.requestId, responseModel: route.model };
    if (!req.stream) {
      try {
        const completion = await route.provider.complete(req, route.upstreamModel, call);
        const usage = completion.usage ?? emptyUsage();
        const costUsd = this.costOf(route, usage);
        if (completion.usage) completion.usage.cost = costUsd;
        this.account(route, ctx, false, usage, 200, null, null, false);
        admission.finish({ usage, costUsd, status: 200 });
        return { kind: "json", route, headers: admission.headers, completion, costUsd };
      } catch (err) {
        this.fail(route, ctx, false, admission, err);
        throw err;
      }
    }
    let source: AsyncIterable<ChatCompletionChunk>;
    try {
      source = await route.provider.stream(req, route.upstreamModel, call);
    } catch (err) {
      this.fail(route, ctx, true, admission, err);
      throw err;
    }
    return {
      kind: "stream",
      route,
      headers: admission.headers,
      chunks: this.observe(source, route, ctx, admission),
    };
  }

  private fail(
    route: Route,
    ctx: RequestContext,
    streamed: boolean,
    admission: Admission,
    err: unknown,
  ): void {
    const e = toGatewayError(err);
    // The key's rate-limit headers belong on error answers too (the error's own, e.g. an
    // upstream retry-after, win).
    if (e === err) {
      for (const [k, v] of Object.entries(admission.headers)) e.headers[k] ??= v;
    }
    const cancelled = ctx.signal.aborted;
    this.account(route, ctx, streamed, emptyUsage(), e.status, e, null, cancelled);
    admission.finish({ usage: emptyUsage(), costUsd: 0, status: e.status });
  }

  /** Passes chunks through untouched while noting time to first token and usage. */
  private async *observe(
    source: AsyncIterable<ChatCompletionChunk>,
    route: Route,
    ctx: RequestContext,
    admission: Admission,
  ): AsyncGenerator<ChatCompletionChunk> {
    let ttft: number | null = null;
    let usage: Usage | undefined;
    let deltas = 0;
    let error: GatewayError | null = null;
    let completed = false;
    try {
      for await (const chunk of source) {
        if (ttft === null && chunk.choices.length > 0) ttft = performance.now() - ctx.startedAt;
        if (chunk.usage) usage = chunk.usage;
        else deltas++;
        if (chunk.usage && chunk.choices.length === 0) {
          (chunk.usage as Usage).cost = this.costOf(route, chunk.usage);
        }
        yield chunk;
      }
      completed = true;
    } catch (err) {
      error = toGatewayError(err);
      throw err;
    } finally {
      // The client went away: either the response stream was cancelled (no error here), or
      // the upstream read failed because the request's signal aborted (ClientAbortedError).
      const cancelled = !completed && (!error || ctx.signal.aborted);
      // A stream cut short has no upstream usage: estimate it (prompt bytes / 4, one token per delta).
      const final = usage ?? partialUsage(ctx.bodyBytes, deltas);
      const costUsd = this.costOf(route, final);
      const status = cancelled ? 499 : error ? error.status : 200;
      this.account(route, ctx, true, final, status, error, ttft, cancelled);
      admission.finish({ usage: final, costUsd, status });
    }
  }

  /** Records a request refused before it had a route (bad model, bad key, bad body). */
  rejected(model: string, ctx: RequestContext, err: unknown, streamed: boolean): void {
    const e = toGatewayError(err);
    this.emit({
      requestId: ctx.requestId,
      keyId: ctx.caller.keyId,
      model,
      provider: "",
      upstreamModel: "",
      promptTokens: 0,
      completionTokens: 0,
      totalTokens: 0,
      costUsd: 0,
      latencyMs: Math.round(performance.now() - ctx.startedAt),
      ttftMs: null,
      status: e.status,
      streamed,
      errorCode: e.code,
      cancelled: false,
      createdAt: new Date(),
    });
  }

  private account(
    route: Route,
    ctx: RequestContext,
    streamed: boolean,
    usage: Usage,
    status: number,
    error: GatewayError | null,
    ttft: number | null,
    cancelled: boolean,
  ): void {
    this.emit({
      requestId: ctx.requestId,
      keyId: ctx.caller.keyId,
      model: route.model,
      provider: route.provider.name,
      upstreamModel: route.upstreamModel,
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      totalTokens: usage.total_tokens,
      costUsd: this.costOf(route, usage),
      latencyMs: Math.round(performance.now() - ctx.startedAt),
      ttftMs: ttft === null ? null : Math.round(ttft),
      status,
      streamed,
      errorCode: error?.code ?? null,
      cancelled,
      createdAt: new Date(),
    });
  }

  private emit(r: UsageRecord): void {
    this.deps.metrics?.observe(r);
    this.deps.usage?.record(r);
  }

  /** The merged model list in OpenAI's format. */
  async models(allowed?: (names: string[]) => boolean): Promise<ModelObject[]> {
    const list = await this.deps.router.listModels();
    const created = nowSeconds();
    const visible = allowed ? list.filter((m) => allowed(allowedNames(m.id, m.provider, m.id))) : list;
    return visible.map((m) => ({
      id: m.id,
      object: "model",
      created: m.created || created,
      owned_by: m.ownedBy,
    }));
  }

  /** One model by id (bare, alias or `<provider>/<id>`), or undefined. */
  async model(id: string, allowed?: (names: string[]) => boolean): Promise<ModelObject | undefined> {
    const all = await this.models(allowed);
    const hit = all.find((m) => m.id === id);
    if (hit) return hit;
    try {
      const route = await this.deps.router.resolve(id);
      if (allowed && !allowed(allowedNames(id, route.provider.name, route.upstreamModel))) return undefined;
      return {
        id,
        object: "model",
        created: route.info?.created || nowSeconds(),
        owned_by: route.provider.name,
      };
    } catch {
      return undefined;
    }
  }

  get providers(): Provider[] {
    return this.deps.router.providers;
  }
}

function emptyUsage(): Usage {
  return { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
}

function partialUsage(bodyBytes: number, deltas: number): Usage {
  const prompt = Math.ceil(bodyBytes / 4);
  return { prompt_tokens: prompt, completion_tokens: deltas, total_tokens: prompt + deltas };
}
