/** The bench's options and its JSON result (what `--json` prints and `--out` writes). */
import type { Measurement } from "./generators.ts";
import type { Summary } from "./stats.ts";

export type TargetName = "direct" | "llmgw" | "portkey";

export interface BenchOptions {
  /** `ci`: the quick gated run; `full`: every measurement. */
  mode: "ci" | "full";
  /** Add Portkey's gateway as a third target. */
  compare: boolean;
  /** Seconds per measurement. */
  durationS: number;
  /** Offered load of the overhead runs (non-streaming; streams at a fifth of it). */
  rate: number;
  /** Connections of the overhead runs. */
  connections: number;
  /** Connection counts of the capacity runs. */
  capacityConnections: number[];
  /** Chunks per stream, and the upstream's delay between them. */
  tokens: number;
  tokenDelayMs: number;
  /** Requests of the memory-growth run (0 = skip). */
  rssRequests: number;
  /** Install wrk/hey (apt-get) and Portkey (npm) when missing. */
  install: boolean;
  /** Where the bench keeps its files (llmgw's data, Portkey's install). */
  workDir: string;
}

/** One load run against one target. */
export interface Run extends Measurement {
  target: TargetName;
  kind: "json" | "stream";
}

export interface Delta {
  p50: number;
  p95: number;
  p99: number;
}

export interface Overhead {
  offeredRps: number;
  connections: number;
  runs: Run[];
  /** llmgw minus direct (and portkey minus direct), latency (ms). */
  llmgw: Delta;
  portkey?: Delta;
  /** Streams: llmgw minus direct, time to first token (ms). */
  llmgwTtft?: Delta;
  portkeyTtft?: Delta;
  /** hey's view of the same non-streaming runs (0.1 ms resolution). */
  hey?: { runs: Run[]; llmgw: Delta; portkey?: Delta };
}

export interface Gate {
  id: string;
  description: string;
  /** Asserted by `--ci` (exit code) or only reported. */
  asserted: boolean;
  value: number | null;
  limit: number;
  unit: string;
  /** `le`: value must be ≤ limit; `lt`: <; `ge`: ≥. */
  op: "le" | "lt" | "ge";
  pass: boolean | null;
  note?: string;
}

export interface SweepPoint {
  target: TargetName;
  offeredRps: number;
  rps: number;
  latency: Summary;
  errorRate: number;
  saturated: boolean;
}

export interface BenchResult {
  tool: "llmgw bench";
  version: string;
  startedAt: string;
  durationS: number;
  mode: "ci" | "full";
  compare: boolean;
  options: Omit<BenchOptions, "workDir" | "install">;
  machine: { cpus: number; loadavgBefore: number[]; busyBefore: number; note?: string };
  targets: { name: TargetName; url: string; pid: number; version?: string; note?: string }[];
  /** Each generator against the fake upstream directly, at saturation (50 connections). */
  generators: {
    name: string;
    kind: "json" | "stream";
    available: boolean;
    rps: number | null;
    note?: string;
  }[];
  overhead: { json: Overhead; stream: Overhead };
  /** Marginal time per forwarded chunk (µs), from streams of two lengths. */
  perChunk: { llmgwUs: number | null; shortChunks: number; longChunks: number; runs: Run[] } | null;
  capacity: Run[];
  sweep: SweepPoint[];
  memory: {
    llmgw: { peakRssKb: number | null; rssKb: number | null };
    portkey?: { peakRssKb: number | null; rssKb: number | null };
    /** RSS after a warm-up, after each fifth of the requests (`samplesKb`), and at the end. */
    growth?: { requests: number; beforeKb: number; afterKb: number; growthKb: number; samplesKb?: number[] };
  };
  gates: Gate[];
  /** Every asserted gate passed. */
  ok: boolean;
  /** What the numbers alone do not say (a target that failed every request, …). */
  notes: string[];
}
