/** Rendering of a BenchResult: terminal tables, a markdown report, an SVG chart. */
import type { BenchResult, Delta, Gate, Run, TargetName } from "./types.ts";
import type { Summary } from "./stats.ts";

type Table = { title: string; head: string[]; rows: string[][]; note?: string };

const f = (v: number | null | undefined, d = 2): string =>
  v === null || v === undefined || !Number.isFinite(v)
    ? "–"
    : Math.abs(v) >= 100
    ? v.toFixed(0)
    : v.toFixed(d);
const signed = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? "–" : `${v >= 0 ? "+" : ""}${f(v, 3)}`;
const int = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v) ? "–" : Math.round(v).toLocaleString("en-US");
const pct = (v: number) => `${(v * 100).toFixed(v === 0 ? 0 : 2)}%`;
const lat = (s: Summary | null | undefined) =>
  s && s.count > 0 ? [f(s.p50), f(s.p95), f(s.p99)] : ["–", "–", "–"];
/** Successful answers per second. */
const good = (x: Run) => x.rps * (1 - x.errorRate);
const cpu = (x: Run) => x.cpu?.targetUsPerReq != null ? int(x.cpu.targetUsPerReq) : "";
const delta = (d: Delta | undefined) => d ? [signed(d.p50), signed(d.p95), signed(d.p99)] : ["", "", ""];

function gateValue(g: Gate): string {
  if (g.value === null) return "not measured";
  const v = g.unit === "%" ? g.value.toFixed(3) : g.unit === "" ? String(g.value) : f(g.value, 3);
  const op = g.op === "le" ? "≤" : g.op === "lt" ? "<" : "≥";
  return `${v}${g.unit ? " " + g.unit : ""} (target ${op} ${g.limit}${g.unit ? " " + g.unit : ""})`;
}

export function tables(r: BenchResult): Table[] {
  const out: Table[] = [];
  if (r.generators.length) {
    out.push({
      title: "Load generators against the fake upstream directly (50 connections, saturation)",
      head: ["generator", "kind", "req/s", "note"],
      rows: r.generators.map((g) => [g.name, g.kind, g.available ? int(g.rps) : "–", g.note ?? ""]),
      note: "A generator is not the bottleneck when its ceiling is above what it measures through a gateway.",
    });
  }
  const oj = r.overhead.json, os = r.overhead.stream;
  const rowsJ = oj.runs.map((x) => [
    x.target,
    int(x.rps),
    ...lat(x.latency),
    ...delta(x.target === "llmgw" ? oj.llmgw : x.target === "portkey" ? oj.portkey : undefined),
    pct(x.errorRate),
    cpu(x),
  ]);
  for (const x of oj.hey?.runs ?? []) {
    rowsJ.push([
      `${x.target} (hey)`,
      int(x.rps),
      ...lat(x.latency),
      ...delta(x.target === "llmgw" ? oj.hey!.llmgw : x.target === "portkey" ? oj.hey!.portkey : undefined),
      pct(x.errorRate),
      cpu(x),
    ]);
  }
  out.push({
    title:
      `Overhead, non-streaming, fixed load: ${oj.offeredRps} req/s over ${oj.connections} connections (ms)`,
    head: ["target", "req/s", "p50", "p95", "p99", "Δp50", "Δp95", "Δp99", "errors", "cpu µs/req"],
    rows: rowsJ,
    note:
      "Δ = through the gateway minus the fake upstream directly, same run; cpu = the gateway process's CPU " +
      "time per request. loadgen offers an open-loop rate with the connections staggered; hey's rate cap is " +
      "per worker with aligned tickers, so its requests come in bursts of one per connection and its latencies " +
      "include the queueing inside each burst.",
  });
  out.push({
    title:
      `Overhead, streaming, fixed load: ${os.offeredRps} streams/s over ${os.connections} connections (ms)`,
    head: [
      "target",
      "ttft p50",
      "ttft p95",
      "ttft p99",
      "Δttft p50",
      "Δttft p95",
      "Δttft p99",
      "total p50",
      "total p99",
      "chunks/s",
      "errors",
      "cpu µs/req",
    ],
    rows: os.runs.map((x) => [
      x.target,
      ...lat(x.ttft),
      ...delta(x.target === "llmgw" ? os.llmgwTtft : x.target === "portkey" ? os.portkeyTtft : undefined),
      x.latency.count ? f(x.latency.p50) : "–",
      x.latency.count ? f(x.latency.p99) : "–",
      int(x.chunksPerSec),
      pct(x.errorRate),
      cpu(x),
    ]),
  });
  if (r.perChunk) {
    out.push({
      title: "Per-chunk cost: streams without delay between chunks, one at a time",
      head: ["target", "chunks/stream", "total p50 (ms)"],
      rows: r.perChunk.runs.map((x) => [x.target, f(x.chunksPerStream, 0), f(x.latency.p50, 3)]),
      note: `llmgw adds ${
        f(r.perChunk.llmgwUs, 1)
      } µs per forwarded chunk (slope between ${r.perChunk.shortChunks}- and ${r.perChunk.longChunks}-chunk streams, minus the direct slope).`,
    });
  }
  const pkOf = (x: Run) =>
    r.capacity.find((y) => y.target === "portkey" && y.kind === x.kind && y.connections === x.connections);
  const compare = r.capacity.some((x) => x.target === "portkey");
  out.push({
    title: "Capacity at saturation",
    note: "req/s counts every answer; × Portkey compares successful answers per second.",
    head: [
      "kind",
      "conns",
      "target",
      "generator",
      "req/s",
      "p50 ms",
      "p95 ms",
      "p99 ms",
      "ttft p50",
      "chunks/s",
      "errors",
      "cpu µs/req",
      ...(compare ? ["× Portkey"] : []),
    ],
    rows: r.capacity.map((x) => {
      const pk = pkOf(x);
      return [
        x.kind,
        String(x.connections),
        x.target,
        x.generator,
        int(x.rps),
        ...lat(x.latency),
        x.ttft && x.ttft.count ? f(x.ttft.p50) : "",
        x.chunksPerSec ? int(x.chunksPerSec) : "",
        x.errors ? `${x.errors} (${pct(x.errorRate)})` : "0",
        cpu(x),
        ...(compare
          ? [
            pk && x.target !== "portkey"
              ? (good(pk) > 0 ? `${f(good(x) / good(pk), 1)}×` : "Portkey failed")
              : "",
          ]
          : []),
      ];
    }),
  });
  const m = r.memory;
  const memRows = [["llmgw", int(m.llmgw.peakRssKb), int(m.llmgw.rssKb)]];
  if (m.portkey) memRows.push(["portkey", int(m.portkey.peakRssKb), int(m.portkey.rssKb)]);
  out.push({
    title: "Memory (kB)",
    head: ["process", "peak RSS (VmHWM)", "RSS at end"],
    rows: memRows,
    note: m.growth
      ? `RSS growth across ${int(m.growth.requests)} requests: ${int(m.growth.beforeKb)} → ${
        int(m.growth.afterKb)
      } kB (${signed(m.growth.growthKb / 1024)} MB)${
        m.growth.samplesKb ? `; after each fifth: ${m.growth.samplesKb.map(int).join(" → ")} kB` : ""
      }`
      : undefined,
  });
  out.push({
    title: "Targets",
    head: ["", "target", "measured", "kind"],
    rows: r.gates.map((g) => [
      g.pass === null ? "?" : g.pass ? "✓" : "✗",
      g.description,
      gateValue(g) + (g.note ? ` — ${g.note}` : ""),
      g.asserted ? "asserted" : "reported",
    ]),
  });
  return out;
}

function header(r: BenchResult): string[] {
  const t = r.targets.map((x) => `${x.name} ${x.url}${x.version ? ` (${x.version})` : ""}`).join("; ");
  return [
    `llmgw bench ${r.version} — ${r.mode}${r.compare ? " + compare" : ""}, ${r.startedAt}, ${r.durationS} s`,
    `machine: ${r.machine.cpus} CPUs, load average ${r.machine.loadavgBefore.join(" ")}, ${
      Math.round(r.machine.busyBefore * 100)
    }% busy before the run`,
    `targets: ${t}`,
    `streams: ${r.options.tokens} chunks, ${r.options.tokenDelayMs} ms apart; ${r.options.durationS} s per measurement`,
  ];
}

/** Plain-text tables for the terminal. */
export function renderText(r: BenchResult): string {
  const lines = header(r);
  for (const t of tables(r)) {
    lines.push("", t.title);
    const w = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((row) => (row[i] ?? "").length)));
    const fmtRow = (row: string[]) =>
      row.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  ");
    lines.push("  " + fmtRow(t.head));
    for (const row of t.rows) lines.push("  " + fmtRow(row));
    if (t.note) lines.push(`  ${t.note}`);
  }
  for (const n of r.notes ?? []) lines.push("", `note: ${n}`);
  lines.push("", r.ok ? "All asserted gates passed." : "Some asserted gates FAILED.");
  return lines.join("\n");
}

/** The markdown report (tables, and the chart when written next to it). */
export function renderMarkdown(r: BenchResult, chart?: string): string {
  const lines = ["# llmgw bench", "", ...header(r).map((l) => `- ${l}`)];
  if (chart) lines.push("", `![latency against offered load](${chart})`);
  for (const n of r.notes ?? []) lines.push("", `> ${n}`);
  for (const t of tables(r)) {
    lines.push(
      "",
      `## ${t.title}`,
      "",
      `| ${t.head.join(" | ")} |`,
      `|${t.head.map(() => " --- ").join("|")}|`,
    );
    for (const row of t.rows) lines.push(`| ${row.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`);
    if (t.note) lines.push("", t.note);
  }
  return lines.join("\n") + "\n";
}

const COLORS: Record<TargetName, string> = { direct: "#6b7280", llmgw: "#2563eb", portkey: "#dc2626" };

/** Latency (p50 solid, p99 dashed; log scale) against offered load (log scale). */
export function renderSvg(r: BenchResult): string {
  const W = 760, H = 440, L = 70, R = 150, T = 40, B = 60;
  const pts = r.sweep;
  const xs = pts.map((p) => p.offeredRps),
    ys = pts.flatMap((p) => [p.latency.p50, p.latency.p99]).filter((v) => v > 0);
  const x0 = Math.min(...xs, 250), x1 = Math.max(...xs, 1000);
  const y0 = Math.max(0.05, Math.min(...ys, 1) / 1.5), y1 = Math.max(...ys, 10) * 1.5;
  const lx = (v: number) =>
    L + ((Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * (W - L - R);
  const ly = (v: number) =>
    H - B -
    ((Math.log10(Math.max(v, y0)) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * (H - T - B);
  const s: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="22" font-size="14" font-weight="bold">Latency against offered load (non-streaming, open loop)</text>`,
  ];
  for (let e = Math.floor(Math.log10(y0)); e <= Math.ceil(Math.log10(y1)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v < y0 || v > y1) continue;
      s.push(`<line x1="${L}" x2="${W - R}" y1="${ly(v)}" y2="${ly(v)}" stroke="#e5e7eb"/>`);
      s.push(
        `<text x="${L - 6}" y="${ly(v) + 4}" text-anchor="end">${
          v >= 1 ? v : v.toFixed(Math.max(0, -e))
        }</text>`,
      );
    }
  }
  for (const v of [...new Set(xs)].sort((a, b) => a - b)) {
    s.push(`<line x1="${lx(v)}" x2="${lx(v)}" y1="${T}" y2="${H - B}" stroke="#f3f4f6"/>`);
    s.push(
      `<text x="${lx(v)}" y="${H - B + 16}" text-anchor="middle">${v >= 1000 ? `${v / 1000}k` : v}</text>`,
    );
  }
  s.push(`<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="black"/>`);
  s.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="black"/>`);
  s.push(
    `<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">offered load (requests/s, log)</text>`,
  );
  s.push(
    `<text transform="translate(18 ${
      (T + H - B) / 2
    }) rotate(-90)" text-anchor="middle">latency (ms, log)</text>`,
  );
  let ly0 = T + 10;
  for (const name of ["direct", "llmgw", "portkey"] as TargetName[]) {
    const series = pts.filter((p) => p.target === name).sort((a, b) => a.offeredRps - b.offeredRps);
    if (!series.length) continue;
    const c = COLORS[name];
    for (const [key, dash] of [["p50", ""], ["p99", ' stroke-dasharray="5 4"']] as const) {
      const d = series.map((p, i) =>
        `${i ? "L" : "M"}${lx(p.offeredRps).toFixed(1)},${ly(p.latency[key]).toFixed(1)}`
      ).join(" ");
      s.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${dash}/>`);
      for (const p of series) {
        s.push(
          `<circle cx="${lx(p.offeredRps).toFixed(1)}" cy="${ly(p.latency[key]).toFixed(1)}" r="3" fill="${
            p.saturated ? "white" : c
          }" stroke="${c}"><title>${name} ${p.offeredRps}/s: ${key} ${
            p.latency[key]
          } ms, achieved ${p.rps}/s</title></circle>`,
        );
      }
    }
    s.push(
      `<line x1="${W - R + 14}" x2="${W - R + 40}" y1="${ly0}" y2="${ly0}" stroke="${c}" stroke-width="2"/>`,
    );
    s.push(`<text x="${W - R + 46}" y="${ly0 + 4}">${name}</text>`);
    ly0 += 20;
  }
  s.push(`<text x="${W - R + 14}" y="${ly0 + 8}">solid: p50</text>`);
  s.push(`<text x="${W - R + 14}" y="${ly0 + 24}">dashed: p99</text>`);
  s.push(`<text x="${W - R + 14}" y="${ly0 + 40}">hollow: saturated</text>`);
  s.push("</svg>");
  return s.join("\n") + "\n";
}
