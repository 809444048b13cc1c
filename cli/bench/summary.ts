/** The bench's derived figures: overhead deltas, per-chunk cost, notes, machine load. */
import { diff, round } from "./stats.ts";
import type { BenchResult, Delta, Overhead, Run, TargetName } from "./types.ts";

/** `n` words `w0 w1 …` (a prompt that the fake echoes as `n` chunks). */
export function words(n: number): string {
  return Array.from({ length: n }, (_, i) => `w${i}`).join(" ");
}

/** Samples /proc/stat for `ms`: the fraction of CPU time that was busy. */
export async function cpuBusy(ms: number): Promise<number> {
  const read = () => {
    const f = Deno.readTextFileSync("/proc/stat").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  try {
    const a = read();
    await new Promise((r) => setTimeout(r, ms));
    const b = read();
    return round(1 - (b.idle - a.idle) / Math.max(1, b.total - a.total));
  } catch {
    return 0;
  }
}

/** Latency (and time to first token) of each gateway minus direct, from one fixed-load scenario. */
export function overheadOf(
  runs: Run[],
  rate: number,
  connections: number,
  gws: TargetName[],
  stream: boolean,
): Overhead {
  const get = (n: TargetName) => runs.find((r) => r.target === n);
  const direct = get("direct");
  const d = (n: TargetName, f: "latency" | "ttft"): Delta | undefined => {
    const a = get(n)?.[f], b = direct?.[f];
    if (!a || !b || a.count === 0 || b.count === 0) return undefined;
    const x = diff(a, b);
    return { p50: round(x.p50), p95: round(x.p95), p99: round(x.p99) };
  };
  const o: Overhead = { offeredRps: rate, connections, runs, llmgw: d("llmgw", "latency")! };
  if (gws.includes("portkey")) o.portkey = d("portkey", "latency");
  if (stream) {
    o.llmgwTtft = d("llmgw", "ttft");
    if (gws.includes("portkey")) o.portkeyTtft = d("portkey", "ttft");
  }
  return o;
}

/**
 * Per-chunk cost: the slope of total time against chunks per stream through llmgw,
 * minus the same slope directly (`p50` of each length, keyed `<target>:<chunks>`).
 */
export function perChunkOf(
  p50: Map<string, number>,
  runs: Run[],
  short: number,
  long: number,
): BenchResult["perChunk"] {
  if (p50.size !== 4) return null;
  const p = (n: TargetName, len: number) => p50.get(`${n}:${len}`)!;
  const extra = (p("llmgw", long) - p("llmgw", short)) - (p("direct", long) - p("direct", short));
  return { llmgwUs: round((extra * 1000) / (long - short)), shortChunks: short, longChunks: long, runs };
}

/** Says so when a target failed every request of a kind (with its own error line, if it logged one). */
export function failureNotes(names: TargetName[], runs: Run[], portkeyLog: string): string[] {
  const notes: string[] = [];
  for (const n of names) {
    for (const kind of ["json", "stream"] as const) {
      const all = runs.filter((x) => x.target === n && x.kind === kind);
      if (all.length && all.every((x) => x.completed > 0 && x.errorRate === 1)) {
        const why = Object.keys(all[0]!.errorKinds ?? {}).join(", ");
        const log = n === "portkey" ? /^.*(TypeError|Error):.*$/m.exec(portkeyLog)?.[0]?.trim() : undefined;
        notes.push(`${n}: every ${kind} request failed (${why})${log ? `; its log: ${log}` : ""}`);
      }
    }
  }
  return notes;
}
