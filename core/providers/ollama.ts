/**
 * The Ollama provider, through Ollama's native API: `/api/chat` (NDJSON streams),
 * `/api/tags` (discovery), `/api/version` (health). Wire translation lives in
 * `ollama_wire.ts`; this module does the HTTP and the error mapping.
 */
import {
  GatewayError,
  InvalidRequestError,
  ModelNotFoundError,
  UnsupportedParameterError,
  UpstreamError,
} from "../errors.ts";
import { completionId, nowSeconds } from "../ids.ts";
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest } from "../protocol.ts";
import { createPooledClient, mapBodyError, readBody, upstreamFetch, type UpstreamOptions } from "./http.ts";
import { readLines } from "./lines.ts";
import { enforceParams } from "./params.ts";
import type { CallContext, Provider, ProviderHealth, ProviderModel } from "./provider.ts";
import {
  OLLAMA_PARAMS,
  type OllamaCallShape,
  type OllamaChatLine,
  OllamaChunkTranslator,
  toChoiceMessage,
  toOllamaRequest,
  usageOf,
} from "./ollama_wire.ts";
import { fanOut, mergeChoiceStreams, sumUsage } from "./merge.ts";

export interface OllamaOptions {
  name: string;
  baseUrl: string;
  timeoutMs: number;
  streamIdleTimeoutMs: number;
}

export class OllamaProvider implements Provider {
  readonly kind = "ollama" as const;
  readonly configured = true;
  readonly name: string;
  private readonly base: string;
  private readonly client = createPooledClient();

  constructor(private readonly opts: OllamaOptions) {
    this.name = opts.name;
    this.base = opts.baseUrl.replace(/\/+$/, "");
  }

  private http(signal?: AbortSignal): UpstreamOptions {
    return { provider: this.name, timeoutMs: this.opts.timeoutMs, signal, client: this.client };
  }

  private async post(body: unknown, ctx: CallContext): Promise<Response> {
    const res = await upstreamFetch(`${this.base}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }, this.http(ctx.signal));
    if (!res.ok) throw await this.errorFrom(res, (body as { model: string }).model);
    return res;
  }

  /** Ollama's error answers → gateway errors. */
  private async errorFrom(res: Response, model: string): Promise<GatewayError> {
    const body = await readBody(res).catch(() => "");
    const message = typeof body === "object" && body && "error" in body
      ? String((body as { error: unknown }).error)
      : String(body || res.statusText);
    return this.errorFromMessage(res.status, message, model);
  }

  private errorFromMessage(status: number, message: string, model: string): GatewayError {
    if (status === 404) {
      return new ModelNotFoundError(
        `The model '${model}' does not exist on provider '${this.name}': ${message}`,
      );
    }
    if (/does not support tools/i.test(message)) {
      return new UnsupportedParameterError("tools", this.name, `${message}`);
    }
    if (/does not support thinking/i.test(message)) {
      return new UnsupportedParameterError("reasoning_effort", this.name, message);
    }
    if (status >= 400 && status < 500) return new InvalidRequestError(`Provider '${this.name}': ${message}`);
    return new UpstreamError(`Provider '${this.name}' failed: ${message}`);
  }

  async complete(req: ChatCompletionRequest, model: string, ctx: CallContext): Promise<ChatCompletion> {
    enforceParams(req, OLLAMA_PARAMS, this.name);
    const { body, shape } = toOllamaRequest(req, model, false);
    const n = req.n ?? 1;
    const answers = await fanOut(n, ctx.signal, (signal) => this.completeOne(body, { ...ctx, signal }));
    const choices = answers.map((line, index) => {
      const { message, finish } = toChoiceMessage(line, shape);
      return { index, message, finish_reason: finish, logprobs: null };
    });
    return {
      id: completionId(),
      object: "chat.completion",
      created: nowSeconds(),
      model: ctx.responseModel,
      choices,
      usage: sumUsage(answers.map(usageOf)),
    };
  }

  private async completeOne(body: unknown, ctx: CallContext): Promise<OllamaChatLine> {
    const res = await this.post(body, ctx);
    let line: OllamaChatLine;
    try {
      line = await res.json();
    } catch (err) {
      throw mapBodyError(err, this.http(ctx.signal), "an answer that is not JSON");
    }
    if (line.error) throw this.errorFromMessage(500, line.error, (body as { model: string }).model);
    return line;
  }

  async stream(
    req: ChatCompletionRequest,
    model: string,
    ctx: CallContext,
  ): Promise<AsyncIterable<ChatCompletionChunk>> {
    enforceParams(req, OLLAMA_PARAMS, this.name);
    const { body, shape } = toOllamaRequest(req, model, true);
    const base = { id: completionId(), created: nowSeconds(), model: ctx.responseModel };
    const n = req.n ?? 1;
    const responses = await fanOut(
      n,
      ctx.signal,
      (signal) => this.post(body, { ...ctx, signal }),
      (res) => res.body?.cancel().catch(() => {}),
    );
    const streams = responses.map((res, i) => this.chunks(res, base, shape, i, ctx));
    return n === 1 ? streams[0]! : mergeChoiceStreams(streams);
  }

  private async *chunks(
    res: Response,
    base: { id: string; created: number; model: string },
    shape: OllamaCallShape,
    index: number,
    ctx: CallContext,
  ): AsyncGenerator<ChatCompletionChunk> {
    const translator = new OllamaChunkTranslator(base, shape, index);
    try {
      for await (const text of readLines(res.body!, this.opts.streamIdleTimeoutMs)) {
        let line: OllamaChatLine;
        try {
          line = JSON.parse(text);
        } catch {
          throw new UpstreamError(`Provider '${this.name}' sent a line that is not JSON.`);
        }
        if (line.error) throw this.errorFromMessage(500, line.error, base.model);
        yield* translator.translate(line);
        if (line.done) {
          yield { ...base, object: "chat.completion.chunk", choices: [], usage: usageOf(line) };
          return;
        }
      }
    } catch (err) {
      throw mapBodyError(err, this.http(ctx.signal), "a broken stream");
    }
    throw new UpstreamError(`Provider '${this.name}' closed the stream before it was done.`);
  }

  async listModels(signal?: AbortSignal): Promise<ProviderModel[]> {
    const res = await upstreamFetch(`${this.base}/api/tags`, {}, { ...this.http(signal), timeoutMs: 10_000 });
    if (!res.ok) throw await this.errorFrom(res, "");
    const body = await res.json() as { models?: { name?: string; model?: string; modified_at?: string }[] };
    return (body.models ?? []).map((m) => ({
      id: m.name ?? m.model ?? "",
      ownedBy: "ollama",
      created: m.modified_at ? Math.floor(Date.parse(m.modified_at) / 1000) || 0 : 0,
    })).filter((m) => m.id);
  }

  async health(signal?: AbortSignal): Promise<ProviderHealth> {
    const started = performance.now();
    try {
      const res = await upstreamFetch(`${this.base}/api/version`, {}, {
        ...this.http(signal),
        timeoutMs: 3000,
      });
      const body = await readBody(res) as { version?: string };
      const latencyMs = Math.round(performance.now() - started);
      if (!res.ok) {
        return { name: this.name, kind: this.kind, status: "error", detail: `HTTP ${res.status}`, latencyMs };
      }
      return { name: this.name, kind: this.kind, status: "ok", latencyMs, version: body?.version };
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      return { name: this.name, kind: this.kind, status: "unreachable", detail: `${detail} (${this.base})` };
    }
  }

  close(): void {
    this.client.close();
  }
}
