/**
 * `llmgw bench`: a very short real run (fake upstream and llmgw in their own processes,
 * the bench's load generator), the JSON shape, the gates, and the renderers.
 */
import assert from "node:assert/strict";
import { runBench } from "../../cli/bench/run.ts";
import { evaluateGates } from "../../cli/bench/gates.ts";
import { renderMarkdown, renderSvg, renderText } from "../../cli/bench/report.ts";
import { quantile, summarize } from "../../cli/bench/stats.ts";
import type { BenchResult, Run } from "../../cli/bench/types.ts";

const silent = { step() {}, done() {}, note() {} };

Deno.test("stats: nearest-rank percentiles", () => {
  const s = summarize(Array.from({ length: 100 }, (_, i) => 100 - i));
  assert.equal(s.count, 100);
  assert.equal(s.p50, 50);
  assert.equal(s.p95, 95);
  assert.equal(s.p99, 99);
  assert.equal(s.max, 100);
  assert.equal(quantile([], 0.5), 0);
  assert.equal(summarize([]).count, 0);
});

Deno.test({
  name: "bench --ci: a one-second run measures llmgw against the fake upstream and evaluates the gates",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const workDir = await Deno.makeTempDir({ prefix: "llmgw-bench-test-" });
    try {
      const r = await runBench({
        mode: "ci",
        compare: false,
        durationS: 1,
        rate: 200,
        connections: 10,
        capacityConnections: [50],
        tokens: 5,
        tokenDelayMs: 0,
        rssRequests: 0,
        install: false,
        workDir,
      }, silent);
      // The shape that --json prints and --out writes.
      const j = JSON.parse(JSON.stringify(r)) as BenchResult;
      assert.equal(j.tool, "llmgw bench");
      assert.equal(j.mode, "ci");
      assert.deepEqual(j.targets.map((t) => t.name), ["direct", "llmgw"]);
      for (const o of [j.overhead.json, j.overhead.stream]) {
        assert.deepEqual(o.runs.map((x) => x.target), ["direct", "llmgw"]);
        for (const x of o.runs) {
          assert.ok(x.completed > 0, `${x.target} completed requests`);
          assert.equal(x.errors, 0, `${x.target}: ${JSON.stringify(x.errorKinds)}`);
          assert.ok(x.latency.p50 > 0 && x.latency.p99 >= x.latency.p50);
        }
        assert.equal(typeof o.llmgw.p95, "number");
      }
      assert.equal(typeof j.overhead.stream.llmgwTtft?.p95, "number");
      const s = j.overhead.stream.runs.find((x) => x.target === "llmgw")!;
      assert.ok(s.ttft && s.ttft.count > 0, "time to first token measured");
      assert.ok((s.chunksPerStream ?? 0) >= 5, `chunks per stream: ${s.chunksPerStream}`);
      assert.deepEqual(j.capacity.map((x) => `${x.kind}/${x.connections}/${x.target}`), [
        "json/50/llmgw",
        "stream/50/llmgw",
      ]);
      assert.ok((j.memory.llmgw.peakRssKb ?? 0) > 0, "peak RSS of the llmgw process");
      // The asserted gates are there and were evaluated.
      const asserted = j.gates.filter((g) => g.asserted).map((g) => g.id).sort();
      assert.deepEqual(asserted, [
        "errors_50_json",
        "errors_50_stream",
        "overhead_p95_json",
        "overhead_p95_stream_ttft",
      ]);
      for (const g of j.gates.filter((g) => g.asserted)) {
        assert.equal(typeof g.pass, "boolean", `${g.id} evaluated`);
        assert.equal(typeof g.value, "number");
      }
      assert.equal(j.ok, j.gates.every((g) => !g.asserted || g.pass));
      assert.match(renderText(r), /Overhead, non-streaming/);
    } finally {
      await Deno.remove(workDir, { recursive: true }).catch(() => {});
    }
  },
});

function fakeResult(over: Partial<Run> = {}): BenchResult {
  const lat = (p: number) => ({
    count: 100,
    mean: p,
    p50: p,
    p90: p * 1.5,
    p95: p * 2,
    p99: p * 3,
    max: p * 4,
  });
  const run = (target: Run["target"], kind: Run["kind"], p: number, extra: Partial<Run> = {}): Run => ({
    target,
    kind,
    generator: "loadgen",
    connections: 50,
    offeredRps: null,
    completed: 1000,
    totalCompleted: 1000,
    errors: 0,
    errorRate: 0,
    rps: 5000 / p,
    latency: lat(p),
    ttft: kind === "stream" ? lat(p / 2) : null,
    chunksPerStream: kind === "stream" ? 21 : null,
    chunksPerSec: kind === "stream" ? 1000 : null,
    ...extra,
  });
  const r: BenchResult = {
    tool: "llmgw bench",
    version: "0",
    startedAt: new Date(0).toISOString(),
    durationS: 1,
    mode: "full",
    compare: true,
    options: {
      mode: "full",
      compare: true,
      durationS: 1,
      rate: 1000,
      connections: 50,
      capacityConnections: [50, 500],
      tokens: 20,
      tokenDelayMs: 1,
      rssRequests: 100,
    },
    machine: { cpus: 2, loadavgBefore: [0, 0, 0], busyBefore: 0 },
    targets: [],
    generators: [{ name: "wrk", kind: "json", available: true, rps: 9000 }],
    overhead: {
      json: {
        offeredRps: 1000,
        connections: 50,
        runs: [run("direct", "json", 0.4), run("llmgw", "json", 0.7)],
        llmgw: { p50: 0.3, p95: 0.6, p99: 0.9 },
      },
      stream: {
        offeredRps: 200,
        connections: 50,
        runs: [run("direct", "stream", 20), run("llmgw", "stream", 21)],
        llmgw: { p50: 1, p95: 2, p99: 3 },
        llmgwTtft: { p50: 0.2, p95: 250, p99: 300 },
      },
    },
    perChunk: { llmgwUs: 12, shortChunks: 10, longChunks: 410, runs: [] },
    capacity: [
      run("llmgw", "json", 10, over),
      run("portkey", "json", 100),
      run("llmgw", "stream", 20, { connections: 500, errors: 3, errorRate: 0.003 }),
    ],
    sweep: [
      { target: "direct", offeredRps: 500, rps: 500, latency: lat(0.3), errorRate: 0, saturated: false },
      { target: "llmgw", offeredRps: 500, rps: 500, latency: lat(0.8), errorRate: 0, saturated: false },
      { target: "llmgw", offeredRps: 2000, rps: 1500, latency: lat(80), errorRate: 0, saturated: true },
    ],
    memory: {
      llmgw: { peakRssKb: 100_000, rssKb: 90_000 },
      growth: { requests: 100, beforeKb: 90_000, afterKb: 95_000, growthKb: 5_000 },
    },
    gates: [],
    ok: false,
    notes: ["portkey: every stream request failed (status 500)"],
  };
  return r;
}

Deno.test("bench gates: asserted spec targets and reported machine targets", () => {
  const gates = evaluateGates(fakeResult());
  const by = Object.fromEntries(gates.map((g) => [g.id, g]));
  assert.equal(by.overhead_p95_json!.pass, true);
  assert.equal(by.overhead_p95_stream_ttft!.pass, false, "250 ms p95 TTFT overhead fails the 200 ms gate");
  assert.equal(by.overhead_p95_stream_ttft!.asserted, true);
  assert.equal(by.errors_50_json!.pass, true);
  assert.equal(by.errors_50_stream!.pass, null, "not measured → not evaluated");
  assert.equal(by.overhead_p50_json!.pass, true);
  assert.equal(by.overhead_p50_json!.asserted, false);
  assert.equal(by.per_chunk!.pass, true);
  assert.equal(by.capacity_vs_portkey!.value, 10);
  assert.equal(by.capacity_vs_portkey!.pass, true);
  assert.equal(by.streams_500_errors!.pass, false);
  assert.equal(by.rss_growth!.pass, true);
  const errors = Object.fromEntries(
    evaluateGates(fakeResult({ errors: 2, errorRate: 0.002 })).map((g) => [g.id, g]),
  );
  assert.equal(errors.errors_50_json!.pass, false, "0.2 % errors with 50 connections fails");
});

Deno.test("bench report: text, markdown and SVG", () => {
  const r = fakeResult();
  r.gates = evaluateGates(r);
  const text = renderText(r);
  assert.match(text, /Capacity at saturation/);
  assert.match(text, /✗ +p95 routing overhead, streaming/);
  const md = renderMarkdown(r, "latency.svg");
  assert.match(md, /!\[latency against offered load\]\(latency\.svg\)/);
  assert.match(md, /\| kind \| conns \| target \|/);
  assert.match(md, /> portkey: every stream request failed/);
  const svg = renderSvg(r);
  assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((svg.match(/<path /g) ?? []).length, 4, "p50 and p99 lines for direct and llmgw");
  assert.doesNotMatch(svg, /NaN|Infinity/);
});
