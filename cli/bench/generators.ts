/**
 * The load generators, each in its own process: wrk (saturation, one thread, latency
 * percentiles through a Lua `done` hook), hey (a rate cap per worker) and the bench's
 * own loadgen.ts (open-loop rates, streams). All return the same `Measurement`.
 */
import type { LoadgenConfig, LoadgenResult } from "./loadgen.ts";
import { round, type Summary } from "./stats.ts";

/** What one load run measured (latencies in ms). */
export interface Measurement {
  generator: "wrk" | "hey" | "loadgen";
  connections: number;
  offeredRps: number | null;
  completed: number;
  /** Including warm-up requests (equal to completed for wrk and hey). */
  totalCompleted: number;
  errors: number;
  errorRate: number;
  rps: number;
  latency: Summary;
  ttft: Summary | null;
  chunksPerStream: number | null;
  chunksPerSec: number | null;
  errorKinds?: Record<string, number>;
  /** CPU time per request (µs) of the gateway process and of the fake upstream, from /proc. */
  cpu?: { targetUsPerReq: number | null; upstreamUsPerReq: number | null };
}

/** One HTTP target: where, which path, which headers. */
export interface Target {
  name: string;
  host: string;
  port: number;
  path: string;
  headers: Record<string, string>;
}

const ROOT = new URL("../../", import.meta.url);

function fromLoadgen(r: LoadgenResult): Measurement {
  return {
    generator: "loadgen",
    connections: r.connections,
    offeredRps: r.offeredRps,
    completed: r.completed,
    totalCompleted: r.totalCompleted,
    errors: r.errors,
    errorRate: r.errorRate,
    rps: r.rps,
    latency: r.latency,
    ttft: r.ttft,
    chunksPerStream: r.chunksPerStream,
    chunksPerSec: r.chunksPerSec,
    ...(r.errors ? { errorKinds: r.errorKinds } : {}),
  };
}

/** Runs loadgen.ts in a child process. */
export async function runLoadgen(
  t: Target,
  body: string,
  opts: Omit<LoadgenConfig, "host" | "port" | "path" | "headers" | "body">,
): Promise<Measurement> {
  const cfg: LoadgenConfig = {
    host: t.host,
    port: t.port,
    path: t.path,
    headers: { "content-type": "application/json", ...t.headers },
    body,
    ...opts,
  };
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      decodeURIComponent(new URL("cli/bench/loadgen.ts", ROOT).pathname),
      JSON.stringify(cfg),
    ],
    stdout: "piped",
    stderr: "piped",
    cwd: decodeURIComponent(ROOT.pathname),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || !text) {
    throw new Error(`loadgen failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  return fromLoadgen(JSON.parse(text.split("\n").pop()!) as LoadgenResult);
}

const luaString = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;

/** wrk -t1 with a Lua script that posts `body` and prints a JSON summary. */
export async function runWrk(
  t: Target,
  body: string,
  connections: number,
  durationS: number,
): Promise<Measurement> {
  const headers = { "content-type": "application/json", ...t.headers };
  const script = [
    `wrk.method = "POST"`,
    `wrk.body = ${luaString(body)}`,
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`),
    `done = function(s, l, r)`,
    `  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,` +
    `"mean":%f,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d}\\n', s.requests, s.duration, s.errors.connect, s.errors.read,` +
    ` s.errors.write, s.errors.status, s.errors.timeout, l.mean, l:percentile(50), l:percentile(90), l:percentile(95),` +
    ` l:percentile(99), l.max))`,
    `end`,
  ].join("\n");
  const file = await Deno.makeTempFile({ prefix: "llmgw-bench-", suffix: ".lua" });
  try {
    await Deno.writeTextFile(file, script);
    const out = await new Deno.Command("wrk", {
      args: [
        "-t1",
        `-c${connections}`,
        `-d${Math.max(1, Math.round(durationS))}s`,
        "--timeout",
        "30s",
        "-s",
        file,
        `http://${t.host}:${t.port}${t.path}`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const line = text.split("\n").find((l) => l.startsWith("WRKJSON "));
    if (!line) throw new Error(`wrk failed: ${text}${new TextDecoder().decode(out.stderr)}`);
    const j = JSON.parse(line.slice(8));
    const errors = j.connect + j.read + j.write + j.status + j.timeout;
    const ms = (us: number) => round(us / 1000);
    return {
      generator: "wrk",
      connections,
      offeredRps: null,
      completed: j.requests,
      totalCompleted: j.requests,
      errors,
      errorRate: j.requests ? errors / j.requests : 0,
      rps: round(j.requests / (j.duration_us / 1e6)),
      latency: {
        count: j.requests,
        mean: ms(j.mean),
        p50: ms(j.p50),
        p90: ms(j.p90),
        p95: ms(j.p95),
        p99: ms(j.p99),
        max: ms(j.max),
      },
      ttft: null,
      chunksPerStream: null,
      chunksPerSec: null,
    };
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/**
 * hey at a fixed rate: `rate / connections` queries per second per worker. Its summary
 * gives the percentiles at 0.1 ms resolution.
 */
export async function runHey(
  t: Target,
  body: string,
  connections: number,
  rate: number,
  durationS: number,
): Promise<Measurement> {
  const args = [
    "-z",
    `${Math.max(1, Math.round(durationS))}s`,
    "-c",
    String(connections),
    "-q",
    String(rate / connections),
    "-m",
    "POST",
    "-T",
    "application/json",
    "-d",
    body,
    "-t",
    "30",
  ];
  for (const [k, v] of Object.entries(t.headers)) args.push("-H", `${k}: ${v}`);
  args.push(`http://${t.host}:${t.port}${t.path}`);
  const out = await new Deno.Command("hey", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  const pct = (p: number) => round(num(new RegExp(`\\s${p}%+ in ([\\d.]+) secs`)) * 1000);
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  if (!Number.isFinite(rps)) throw new Error(`hey failed: ${text}${new TextDecoder().decode(out.stderr)}`);
  let ok = 0, bad = 0, errors = 0;
  for (const m of text.matchAll(/\[(\d{3})\]\s+(\d+) responses/g)) {
    if (m[1]!.startsWith("2")) ok += Number(m[2]);
    else bad += Number(m[2]);
  }
  const errPart = text.split("Error distribution:")[1] ?? "";
  for (const m of errPart.matchAll(/\[(\d+)\]/g)) errors += Number(m[1]);
  const completed = ok + bad + errors;
  return {
    generator: "hey",
    connections,
    offeredRps: rate,
    completed,
    totalCompleted: completed,
    errors: bad + errors,
    errorRate: completed ? (bad + errors) / completed : 0,
    rps: round(rps),
    latency: {
      count: ok + bad,
      mean: round(num(/Average:\s+([\d.]+) secs/) * 1000),
      p50: pct(50),
      p90: pct(90),
      p95: pct(95),
      p99: pct(99),
      max: round(num(/Slowest:\s+([\d.]+) secs/) * 1000),
    },
    ttft: null,
    chunksPerStream: null,
    chunksPerSec: null,
  };
}
