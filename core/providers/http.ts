/**
 * Upstream HTTP: one pooled client per provider, time limits, and the mapping of
 * network failures to gateway errors (unreachable → 503, no answer in time → 504).
 */
import { GatewayError, GatewayTimeoutError, ServiceUnavailableError, UpstreamError } from "../errors.ts";
import { StreamIdleError } from "./lines.ts";

export interface UpstreamOptions {
  /** Provider name used in error messages. */
  provider: string;
  /** Time allowed until the response headers arrive. */
  timeoutMs: number;
  signal?: AbortSignal;
  client?: Deno.HttpClient;
}

/** Thrown (as the abort reason) when the caller's signal aborted: the client went away. */
export class ClientAbortedError extends GatewayError {
  constructor() {
    super(499, "The client closed the request.", {
      type: "invalid_request_error",
      code: "client_closed_request",
    });
  }
}

/** Creates the pooled HTTP client a provider keeps for its life. */
export function createPooledClient(): Deno.HttpClient {
  return Deno.createHttpClient({ poolMaxIdlePerHost: 256, poolIdleTimeout: 30_000, http2: false });
}

/**
 * fetch() with a header timeout. Network errors become 503, timeouts 504, and an
 * abort by the caller becomes `ClientAbortedError`.
 */
export async function upstreamFetch(
  url: string,
  init: RequestInit,
  opts: UpstreamOptions,
): Promise<Response> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  try {
    // deno-lint-ignore no-explicit-any
    return await fetch(url, { ...init, signal, client: opts.client } as any);
  } catch (err) {
    throw mapFetchError(err, opts, timeout);
  }
}

/** Maps an error thrown by fetch or by reading a body to a GatewayError. */
export function mapFetchError(err: unknown, opts: UpstreamOptions, timeout?: AbortSignal): GatewayError {
  if (err instanceof GatewayError) return err;
  if (opts.signal?.aborted) return new ClientAbortedError();
  if (timeout?.aborted || (err instanceof DOMException && err.name === "TimeoutError")) {
    return new GatewayTimeoutError(
      `Provider '${opts.provider}' did not answer within ${Math.round(opts.timeoutMs / 1000)}s.`,
    );
  }
  const detail = describeNetworkError(err);
  return new ServiceUnavailableError(`Provider '${opts.provider}' is unreachable: ${detail}`, { cause: err });
}

/** Reads a JSON body, or returns the text when it is not JSON. */
export async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Errors while reading a body: idle streams → 504, broken sockets → 502/503. */
export function mapBodyError(err: unknown, http: UpstreamOptions, what: string): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof StreamIdleError) {
    return mapFetchError(new DOMException(`idle for ${err.idleMs} ms`, "TimeoutError"), {
      ...http,
      timeoutMs: err.idleMs,
    });
  }
  if (http.signal?.aborted) return mapFetchError(err, http);
  return new UpstreamError(`Provider '${http.provider}' sent ${what}.`, { cause: err });
}

/** The most specific line of a network error (Deno nests the OS error in `cause`). */
function describeNetworkError(err: unknown): string {
  let e: unknown = err;
  let text = err instanceof Error ? err.message : String(err);
  while (e instanceof Error && e.cause instanceof Error) {
    e = e.cause;
    text = (e as Error).message;
  }
  return text.split("\n")[0]!;
}
