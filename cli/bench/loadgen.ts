/**
 * The bench's own HTTP/1.1 load generator, run in its own process (so that it never
 * shares an event loop with the gateway or the upstream): keep-alive connections over
 * raw TCP, one request in flight per connection, and a byte-level response parser
 * (content-length and chunked bodies) that timestamps the first content-bearing SSE
 * event (time to first token) and counts events (chunks) as they arrive.
 *
 * Modes: `rate` — an open-loop offered rate spread over the connections; a request that
 * has to wait for its connection is timed from when it was due, so queueing is counted
 * (no coordinated omission); `closed` — every connection sends back to back (saturation);
 * `count` — like closed, until `requests` have been sent.
 *
 * Usage: deno run -A cli/bench/loadgen.ts '<LoadgenConfig JSON>' → one LoadgenResult JSON line.
 */
import { round, rounded, Samples, type Summary } from "./stats.ts";

export interface LoadgenConfig {
  host: string;
  port: number;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Parse the body as SSE: time to first token, chunk counts. */
  stream?: boolean;
  mode: "rate" | "closed" | "count";
  connections: number;
  /** Requests per second (mode rate). */
  rate?: number;
  /** Length of the measurement (modes rate and closed). */
  durationMs?: number;
  /** Requests to send (mode count). */
  requests?: number;
  /** Load applied first and not measured. */
  warmupMs?: number;
  /** Per-request limit (default 30 s). */
  timeoutMs?: number;
}

export interface LoadgenResult {
  mode: LoadgenConfig["mode"];
  connections: number;
  offeredRps: number | null;
  /** Measured requests that completed (any status). */
  completed: number;
  /** Every request that completed, warm-up included (for CPU per request). */
  totalCompleted: number;
  /** Non-2xx answers, mid-stream errors, timeouts and connection failures. */
  errors: number;
  errorRate: number;
  errorKinds: Record<string, number>;
  elapsedMs: number;
  rps: number;
  /** Request sent (or due) → last byte. */
  latency: Summary;
  /** Request sent (or due) → first SSE event with content (streams only). */
  ttft: Summary | null;
  /** SSE events per stream, excluding `[DONE]` (mean). */
  chunksPerStream: number | null;
  /** SSE events per second across all streams. */
  chunksPerSec: number | null;
  /** Requests that went out more than 1 ms after they were due because their connection was busy. */
  late: number;
  /** CPU time of this generator per request (µs), from /proc/self/stat; null elsewhere. */
  selfCpuUsPerReq: number | null;
}

function selfCpuMs(): number | null {
  try {
    const s = Deno.readTextFileSync("/proc/self/stat");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return null;
  }
}

const CRLF2 = [13, 10, 13, 10];
const enc = new TextEncoder();
const latin1 = new TextDecoder("latin1");

function indexOfSeq(buf: Uint8Array, seq: number[], from: number, to: number): number {
  outer: for (let i = from; i <= to - seq.length; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

/** What one response looked like. */
interface Outcome {
  status: number;
  error: string | null;
  /** performance.now() of the first content event, or -1. */
  firstToken: number;
  events: number;
}

/** SSE event scanner over de-chunked body bytes: counts events, finds the first with content. */
class SseScan {
  events = 0;
  firstToken = -1;
  error = false;
  done = false;
  #prev = 0;
  #event: number[] = [];
  #wantText = true;

  feed(b: Uint8Array, from: number, to: number, now: number): void {
    for (let i = from; i < to; i++) {
      const c = b[i]!;
      if (c === 10 && this.#prev === 10) {
        this.#end(now);
        this.#prev = 0;
        continue;
      }
      this.#prev = c;
      if (this.#wantText && this.#event.length < 4096) this.#event.push(c);
    }
  }

  #end(now: number): void {
    const text = latin1.decode(Uint8Array.from(this.#event));
    this.#event = [];
    if (text.startsWith("data: [DONE]")) {
      this.done = true;
      return;
    }
    if (!text.startsWith("data:")) return;
    this.events++;
    if (text.startsWith('data: {"error"')) this.error = true;
    if (this.firstToken < 0 && /"content":"[^"]/.test(text)) this.firstToken = now;
  }
}

class Conn {
  #conn: Deno.TcpConn | null = null;
  #buf = new Uint8Array(64 * 1024);
  #len = 0;

  constructor(private readonly cfg: LoadgenConfig, private readonly request: Uint8Array) {}

  close(): void {
    try {
      this.#conn?.close();
    } catch { /* closed */ }
    this.#conn = null;
    this.#len = 0;
  }

  async #read(): Promise<boolean> {
    if (this.#len === this.#buf.length) {
      const next = new Uint8Array(this.#buf.length * 2);
      next.set(this.#buf);
      this.#buf = next;
    }
    const n = await this.#conn!.read(this.#buf.subarray(this.#len));
    if (n === null) return false;
    this.#len += n;
    return true;
  }

  #consume(n: number): void {
    this.#buf.copyWithin(0, n, this.#len);
    this.#len -= n;
  }

  /** Sends the request and reads the whole response. */
  async send(): Promise<Outcome> {
    if (!this.#conn) {
      this.#conn = await Deno.connect({ hostname: this.cfg.host, port: this.cfg.port });
      this.#conn.setNoDelay(true);
    }
    const conn = this.#conn;
    let off = 0;
    while (off < this.request.length) off += await conn.write(this.request.subarray(off));
    // Head
    let headEnd = -1;
    while ((headEnd = indexOfSeq(this.#buf, CRLF2, 0, this.#len)) < 0) {
      if (!(await this.#read())) throw new Error("closed");
    }
    const head = latin1.decode(this.#buf.subarray(0, headEnd)).toLowerCase();
    this.#consume(headEnd + 4);
    const status = Number(head.slice(9, 12));
    const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
    const chunked = /\r\ntransfer-encoding:\s*chunked/.test(head);
    const keepAlive = !/\r\nconnection:\s*close/.test(head);
    const scan = this.cfg.stream && status === 200 ? new SseScan() : null;
    if (cl) {
      let left = Number(cl[1]);
      while (this.#len < left) {
        if (!(await this.#read())) throw new Error("closed");
      }
      scan?.feed(this.#buf, 0, left, performance.now());
      this.#consume(left);
      left = 0;
    } else if (chunked) {
      while (true) {
        let nl = -1;
        while ((nl = indexOfSeq(this.#buf, [13, 10], 0, this.#len)) < 0) {
          if (!(await this.#read())) throw new Error("closed");
        }
        const size = parseInt(latin1.decode(this.#buf.subarray(0, nl)), 16);
        this.#consume(nl + 2);
        if (!(size >= 0)) throw new Error("bad chunk");
        if (size === 0) {
          // trailers: read up to the empty line
          while (indexOfSeq(this.#buf, [13, 10], 0, this.#len) < 0) {
            if (!(await this.#read())) throw new Error("closed");
          }
          const end = indexOfSeq(this.#buf, [13, 10], 0, this.#len);
          this.#consume(end + 2);
          break;
        }
        let left = size;
        while (left > 0) {
          if (this.#len === 0 && !(await this.#read())) throw new Error("closed");
          const take = Math.min(left, this.#len);
          scan?.feed(this.#buf, 0, take, performance.now());
          this.#consume(take);
          left -= take;
        }
        while (this.#len < 2) {
          if (!(await this.#read())) throw new Error("closed");
        }
        this.#consume(2);
      }
    } else {
      // Body until the connection closes.
      while (true) {
        if (this.#len > 0) {
          scan?.feed(this.#buf, 0, this.#len, performance.now());
          this.#consume(this.#len);
        }
        if (!(await this.#read())) break;
      }
      this.close();
    }
    if (!keepAlive) this.close();
    let error: string | null = null;
    if (status < 200 || status >= 300) error = `status ${status}`;
    else if (scan?.error) error = "stream error event";
    else if (scan && !scan.done) error = "stream without [DONE]";
    return { status, error, firstToken: scan?.firstToken ?? -1, events: scan?.events ?? 0 };
  }
}

function buildRequest(cfg: LoadgenConfig): Uint8Array {
  const body = enc.encode(cfg.body);
  let head = `POST ${cfg.path} HTTP/1.1\r\nhost: ${cfg.host}:${cfg.port}\r\n`;
  for (const [k, v] of Object.entries(cfg.headers)) head += `${k}: ${v}\r\n`;
  head += `content-length: ${body.length}\r\n\r\n`;
  const h = enc.encode(head);
  const out = new Uint8Array(h.length + body.length);
  out.set(h);
  out.set(body, h.length);
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Runs one load described by `cfg` in this process. */
export async function runLoad(cfg: LoadgenConfig): Promise<LoadgenResult> {
  const request = buildRequest(cfg);
  const cpu0 = selfCpuMs();
  const C = Math.max(1, cfg.connections);
  const warmup = cfg.warmupMs ?? 0;
  const timeoutMs = cfg.timeoutMs ?? 30_000;
  const latency = new Samples();
  const ttft = new Samples();
  const errorKinds: Record<string, number> = {};
  let completed = 0, errors = 0, events = 0, late = 0, sent = 0, totalCompleted = 0;
  const t0 = performance.now();
  const measureFrom = t0 + warmup;
  const end = cfg.mode === "count" ? Infinity : measureFrom + (cfg.durationMs ?? 5000);
  const interval = cfg.mode === "rate" ? 1000 / Math.max(1e-9, cfg.rate ?? 1) : 0;
  let measuredEnd = measureFrom;

  const one = async (conn: Conn, start: number): Promise<void> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let outcome: Outcome | { error: string; status: 0; firstToken: -1; events: 0 };
    try {
      outcome = await Promise.race([
        conn.send(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("timeout")), timeoutMs);
        }),
      ]);
    } catch (err) {
      conn.close();
      const msg = err instanceof Error ? err.message : String(err);
      outcome = {
        error: msg === "timeout" ? "timeout" : `connection: ${msg}`,
        status: 0,
        firstToken: -1,
        events: 0,
      };
    } finally {
      clearTimeout(timer);
    }
    const now = performance.now();
    totalCompleted++;
    if (start < measureFrom) return;
    measuredEnd = Math.max(measuredEnd, now);
    completed++;
    if (outcome.error) {
      errors++;
      errorKinds[outcome.error] = (errorKinds[outcome.error] ?? 0) + 1;
      return;
    }
    latency.push(now - start);
    if (cfg.stream) {
      events += outcome.events;
      if (outcome.firstToken > 0) ttft.push(outcome.firstToken - start);
    }
  };

  const worker = async (k: number): Promise<void> => {
    const conn = new Conn(cfg, request);
    let busyUntil = 0;
    for (let i = 0;; i++) {
      let start: number;
      if (cfg.mode === "rate") {
        const due = t0 + (i * C + k) * interval;
        if (due >= end) break;
        const now = performance.now();
        if (now < due) await sleep(due - now);
        const sentAt = performance.now();
        // Waiting for our own previous request is queueing: time from when it was due.
        if (busyUntil > due + 1) {
          late++;
          start = due;
        } else start = sentAt;
      } else {
        if (cfg.mode === "count" && sent >= (cfg.requests ?? 0)) break;
        start = performance.now();
        if (start >= end) break;
      }
      sent++;
      await one(conn, start);
      busyUntil = performance.now();
    }
    conn.close();
  };

  await Promise.all(Array.from({ length: C }, (_, k) => worker(k)));
  const elapsedMs = Math.max(
    1,
    (cfg.mode === "count" ? measuredEnd : Math.max(measuredEnd, end)) - measureFrom,
  );
  const count = completed;
  const cpu1 = selfCpuMs();
  return {
    mode: cfg.mode,
    connections: C,
    offeredRps: cfg.mode === "rate" ? cfg.rate ?? null : null,
    completed: count,
    totalCompleted,
    errors,
    errorRate: count ? errors / count : 0,
    errorKinds,
    elapsedMs: round(elapsedMs),
    rps: round((count * 1000) / elapsedMs),
    latency: rounded(latency.summary()),
    ttft: cfg.stream ? rounded(ttft.summary()) : null,
    chunksPerStream: cfg.stream ? round(latency.length ? events / latency.length : 0) : null,
    chunksPerSec: cfg.stream ? round((events * 1000) / elapsedMs) : null,
    late,
    selfCpuUsPerReq: cpu0 !== null && cpu1 !== null && totalCompleted
      ? round(((cpu1 - cpu0) * 1000) / totalCompleted)
      : null,
  };
}

if (import.meta.main) {
  const cfg = JSON.parse(Deno.args[0] ?? "{}") as LoadgenConfig;
  const result = await runLoad(cfg);
  console.log(JSON.stringify(result));
  Deno.exit(0);
}
