/**
 * Shared machinery of the fake upstreams (fake_openai.ts, fake_ollama.ts): the
 * `Deno.serve` plumbing with request recording and clean shutdown, cancellable streamed
 * bodies, and the wire-format-independent "plan" of what a fake model answers, chosen by
 * the model name (see the behaviour lists at the top of fake_openai.ts / fake_ollama.ts).
 *
 * Everything here is cheap per request: bodies are built as strings once and streamed
 * without per-chunk work beyond the configured delays (writes are coalesced when there
 * is no delay), so the fakes can serve the load benchmark.
 */
// ── Server plumbing ───────────────────────────────────────────────────────────

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

/**
 * A signal that aborts when the client goes away or the server closes; made on first
 * use, so that a plain JSON answer never pays for it.
 */
export type LazySignal = AbortSignal | (() => AbortSignal);

const resolveSignal = (s: LazySignal): AbortSignal => typeof s === "function" ? s() : s;

/** Handler of one request; `signal` aborts when the client goes away or the server closes. */
export type FakeRoute = (
  req: Request,
  url: URL,
  body: unknown,
  invalidJson: boolean,
  signal: LazySignal,
) => Response | Promise<Response>;

/** Starts a fake on 127.0.0.1:0. `close()` (idempotent) ends streams and hanging requests first. */
export function serveFake(route: FakeRoute, record = true): FakeServer {
  const requests: RecordedRequest[] = [];
  const stop = new AbortController();
  // Per-request signals that also abort on close(). Not `AbortSignal.any([stop.signal,
  // req.signal])`: with a long-lived source that costs ~1.6 kB per request in Deno 2.9
  // (never freed while the fake runs) and more than halves the fake's request rate.
  const live = new Set<AbortController>();
  stop.signal.addEventListener("abort", () => {
    for (const c of live) c.abort();
  }, { once: true });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req, info) => {
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
    let signal: AbortSignal | undefined;
    const lazy = () => {
      if (signal) return signal;
      const c = new AbortController();
      signal = c.signal;
      if (stop.signal.aborted) c.abort();
      else {
        live.add(c);
        const forget = () => void live.delete(c);
        (info as { completed?: Promise<void> }).completed?.then(forget, forget);
      }
      const client = req.signal;
      if (client.aborted) c.abort(client.reason);
      else client.addEventListener("abort", () => c.abort(client.reason), { once: true });
      return signal;
    };
    return await route(req, url, body, invalidJson, lazy);
  });
  const port = server.addr.port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close() {
      stop.abort();
      return closing ??= server.shutdown();
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
export function textStream(
  signal: LazySignal,
  run: (w: StreamWriter) => Promise<void>,
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  const cancelled = new AbortController();
  const sig = AbortSignal.any([resolveSignal(signal), cancelled.signal]);
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
export async function hang(lazy: LazySignal): Promise<Response> {
  const signal = resolveSignal(lazy);
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
  return new Response(null, { status: 499 });
}

export function json(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/** Random base62 string of `n` characters. */
export function randomId(n: number, alphabet = ALNUM): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  let s = "";
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

// ── Behaviour plans ───────────────────────────────────────────────────────────

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
    const results = messages.slice(lastUser + 1).filter((m) => m.role === "tool").map((m) =>
      textOf(m.content)
    );
    if (results.length > 0) plan.pieces = words(`Tool results: ${results.join("; ")}`);
    else if (tools.length > 0) {
      const n = b === "tools-parallel" ? 2 : 1;
      for (let i = 0; i < n; i++) {
        const f = tools[Math.min(i, tools.length - 1)];
        plan.toolCalls.push({
          name: typeof f?.name === "string" ? f.name : "tool",
          args: sampleArgs(f?.parameters, i),
        });
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
  else if (tokens) {
    plan.pieces = Array.from({ length: Number(tokens[1]) }, (_, i) => i === 0 ? "tok0" : ` tok${i}`);
  }
  const limit = [body.max_completion_tokens, body.max_tokens, obj(body.options)?.num_predict]
    .find((v) => typeof v === "number" && v >= 0) as number | undefined;
  if (limit !== undefined && plan.finish !== "tool_calls" && plan.pieces.length > limit) {
    plan.pieces = plan.pieces.slice(0, limit);
    plan.finish = "length";
  }
  plan.completionTokens = plan.pieces.length + plan.thinking.length + 10 * plan.toolCalls.length;
  return plan;
}
