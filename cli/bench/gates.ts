/**
 * The bench's gates. Asserted (they decide `--ci`'s exit code): the spec's own
 * targets — p95 routing overhead under 200 ms and 50 concurrent requests with an error
 * rate under 0.1 %, streaming and not. Reported only: the performance targets of this
 * machine (sub-millisecond overhead, per-chunk cost, capacity against Portkey, 500
 * concurrent streams, memory growth).
 */
import type { BenchResult, Gate, Run } from "./types.ts";

function gate(
  id: string,
  description: string,
  asserted: boolean,
  value: number | null | undefined,
  op: Gate["op"],
  limit: number,
  unit: string,
  note?: string,
): Gate {
  const v = value === undefined || value === null || !Number.isFinite(value) ? null : value;
  const pass = v === null ? null : op === "le" ? v <= limit : op === "lt" ? v < limit : v >= limit;
  return { id, description, asserted, value: v, limit, unit, op, pass, ...(note ? { note } : {}) };
}

/** Successful answers per second. */
const good = (r: Run) => r.rps * (1 - r.errorRate);

const find = (runs: Run[], target: string, kind: string, c?: number) =>
  runs.find((r) => r.target === target && r.kind === kind && (c === undefined || r.connections === c));

export function evaluateGates(r: BenchResult): Gate[] {
  const g: Gate[] = [];
  const oj = r.overhead.json, os = r.overhead.stream;
  const load = `${oj.offeredRps} req/s over ${oj.connections} connections`;
  // Asserted: the spec's targets.
  g.push(
    gate(
      "overhead_p95_json",
      `p95 routing overhead, non-streaming (${load})`,
      true,
      oj.llmgw?.p95,
      "lt",
      200,
      "ms",
    ),
  );
  g.push(
    gate(
      "overhead_p95_stream_ttft",
      `p95 routing overhead, streaming time to first token (${os.offeredRps} streams/s)`,
      true,
      os.llmgwTtft?.p95,
      "lt",
      200,
      "ms",
    ),
  );
  for (const kind of ["json", "stream"] as const) {
    const run = find(r.capacity, "llmgw", kind, 50);
    g.push(
      gate(
        `errors_50_${kind}`,
        `error rate with 50 concurrent ${kind === "json" ? "non-streaming requests" : "streams"}`,
        true,
        run ? run.errorRate * 100 : null,
        "lt",
        0.1,
        "%",
        run ? `${run.errors} of ${run.completed}` : "not measured",
      ),
    );
  }
  // Reported: this machine's performance targets.
  g.push(
    gate("overhead_p50_json", `p50 overhead, non-streaming (${load})`, false, oj.llmgw?.p50, "le", 0.5, "ms"),
  );
  g.push(
    gate("overhead_p99_json", `p99 overhead, non-streaming (${load})`, false, oj.llmgw?.p99, "le", 2, "ms"),
  );
  g.push(
    gate(
      "overhead_p99_ttft",
      "p99 time-to-first-token overhead, streaming",
      false,
      os.llmgwTtft?.p99,
      "le",
      1,
      "ms",
    ),
  );
  if (r.perChunk) {
    g.push(gate("per_chunk", "overhead per forwarded chunk", false, r.perChunk.llmgwUs, "le", 50, "µs"));
  }
  const pk = find(r.capacity, "portkey", "json", 50), gw = find(r.capacity, "llmgw", "json", 50);
  if (pk && gw) {
    g.push(
      gate(
        "capacity_vs_portkey",
        "capacity vs Portkey, non-streaming, 50 connections",
        false,
        good(pk) > 0 ? good(gw) / good(pk) : null,
        "ge",
        10,
        "×",
        `${gw.rps} vs ${pk.rps} req/s (${gw.generator}); errors: llmgw ${gw.errors}, Portkey ${pk.errors}`,
      ),
    );
    g.push(
      gate(
        "capacity_errors",
        "errors at saturation, non-streaming, 50 connections",
        false,
        gw.errors,
        "le",
        0,
        "",
      ),
    );
  }
  const s500 = find(r.capacity, "llmgw", "stream", 500);
  if (s500) {
    g.push(
      gate(
        "streams_500_errors",
        "errors with 500 concurrent streams",
        false,
        s500.errors,
        "le",
        0,
        "",
        `${s500.completed} streams`,
      ),
    );
  }
  const growth = r.memory.growth;
  if (growth) {
    g.push(
      gate(
        "rss_growth",
        `RSS growth across ${growth.requests} requests`,
        false,
        growth.growthKb / 1024,
        "lt",
        10,
        "MB",
        `${growth.beforeKb} → ${growth.afterKb} kB`,
      ),
    );
  }
  return g;
}
