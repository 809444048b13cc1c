/**
 * The one interface every provider module implements. Providers own all wire
 * translation: they take an OpenAI-shaped request and return OpenAI-shaped
 * completions and chunks, throwing `GatewayError`s for everything that goes wrong.
 */
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest } from "../protocol.ts";

export type ProviderKind = "ollama" | "openai" | "openrouter";

/** Per-call context: the request's abort signal travels all the way upstream. */
export interface CallContext {
  signal: AbortSignal;
  requestId: string;
  /** The model name the client asked for (reported back in `model`). */
  responseModel: string;
}

/** A model a provider can serve, with what routing and cost accounting need. */
export interface ProviderModel {
  id: string;
  ownedBy: string;
  created: number;
  contextLength?: number;
  /** USD per token. */
  pricing?: { prompt: number; completion: number };
}

export type ProviderStatus = "ok" | "unreachable" | "unconfigured" | "error";

export interface ProviderHealth {
  name: string;
  kind: ProviderKind;
  status: ProviderStatus;
  detail?: string;
  latencyMs?: number;
  version?: string;
}

export interface Provider {
  readonly name: string;
  readonly kind: ProviderKind;
  /** False when the provider lacks what it needs (e.g. an API key); requests then get 503. */
  readonly configured: boolean;
  /** Why the provider is not configured (never contains a secret). */
  readonly configProblem?: string;
  /** A non-streaming chat completion. */
  complete(req: ChatCompletionRequest, upstreamModel: string, ctx: CallContext): Promise<ChatCompletion>;
  /**
   * A streaming chat completion. The returned promise settles once the upstream has
   * accepted the request (so HTTP errors surface before any byte is sent to the
   * client); the iterable then yields chunks as they arrive and throws a
   * `GatewayError` on a mid-stream failure.
   */
  stream(
    req: ChatCompletionRequest,
    upstreamModel: string,
    ctx: CallContext,
  ): Promise<AsyncIterable<ChatCompletionChunk>>;
  listModels(signal?: AbortSignal): Promise<ProviderModel[]>;
  health(signal?: AbortSignal): Promise<ProviderHealth>;
  close?(): void;
}
