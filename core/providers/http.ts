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

const STREAM_TYPES = /^(text\/event-stream|application\/x-ndjson)/i;

/**
 * fetch() with a time limit. Network errors become 503, timeouts 504, and an abort by
 * the caller becomes `ClientAbortedError`.
 *
 * The limit covers the response headers, and for a JSON answer also its body as read by
 * `json()` / `text()` (a stream's body is governed by its idle limit instead). Its timer
 * is cleared as soon as that is over: a timer left running for the whole limit (120 s by
 * default) per request kept a timer and a signal alive per request — about 1 kB each, so
 * +100 MB of RSS at 1 000 req/s — and made every GC slower.
 */
export async function upstreamFetch(
  url: string,
  init: RequestInit,
  opts: UpstreamOptions,
): Promise<Response> {
  const ac = new AbortController();
  const timer = setTimeout(
    () => ac.abort(new DOMException("Signal timed out.", "TimeoutError")),
    opts.timeoutMs,
  );
  const caller = opts.signal;
  if (caller) {
    if (caller.aborted) ac.abort(caller.reason);
    else caller.addEventListener("abort", () => ac.abort(caller.reason), { once: true });
  }
  let res: Response;
  try {
    // deno-lint-ignore no-explicit-any
    res = await fetch(url, { ...init, signal: ac.signal, client: opts.client } as any);
  } catch (err) {
    clearTimeout(timer);
    throw mapFetchError(err, opts, ac.signal.aborted && !caller?.aborted ? ac.signal : undefined);
  }
  if (!res.body || STREAM_TYPES.test(res.headers.get("content-type") ?? "")) clearTimeout(timer);
  else {
    const done = () => clearTimeout(timer);
    const json = res.json.bind(res), text = res.text.bind(res);
    res.json = () => json().finally(done);
    res.text = () => text().finally(done);
  }
  return res;
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
