/**
 * The bench's measurements: starts the fake upstream, llmgw (and Portkey), then runs
 * each scenario against every target back to back, so that direct, llmgw and Portkey
 * see the same machine state. Overhead runs (fixed offered load) and capacity runs
 * (saturation) are kept apart. Gates are evaluated in gates.ts.
 */
import { VERSION } from "../../core/version.ts";
import { type Measurement, runHey, runLoadgen, runWrk, type Target } from "./generators.ts";
import { evaluateGates } from "./gates.ts";
import {
  ensureTools,
  type Gateway,
  type Proc,
  readCpuMs,
  readMemory,
  startLlmgw,
  startPortkey,
  startUpstream,
  type Upstream,
} from "./procs.ts";
import { diff, round } from "./stats.ts";
import { cpuBusy, failureNotes, overheadOf, perChunkOf, words } from "./summary.ts";
import type { BenchOptions, BenchResult, Run, SweepPoint, TargetName } from "./types.ts";

export interface Progress {
  /** A step starts (`i` of `n`). */
  step(i: number, n: number, label: string): void;
  /** A step ended with a one-line result. */
  done(summary: string): void;
  note(text: string): void;
}

const CHUNKS_SHORT = 10, CHUNKS_LONG = 410;

export async function runBench(opts: BenchOptions, progress: Progress): Promise<BenchResult> {
  const started = Date.now();
  const full = opts.mode === "full";
  const D = opts.durationS;
  const N = opts.tokens;
  const loadavgBefore = (() => {
    try {
      return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number);
    } catch {
      return [];
    }
  })();
  const busyBefore = await cpuBusy(500);
  if (busyBefore > 0.15) {
    progress.note(
      `the machine is already ${
        Math.round(busyBefore * 100)
      }% busy before the bench starts: numbers will be noisy`,
    );
  }

  const tools = full ? await ensureTools(opts.install, (w) => progress.note(`installing ${w} (apt-get)…`)) : {
    wrk: false,
    hey: false,
  };
  const procs: Proc[] = [];
  const cleanup = async () => {
    await Promise.allSettled(procs.reverse().map((p) => p.stop()));
  };
  const dataDir = `${opts.workDir}/llmgw-${Date.now()}`;
  try {
    const upstream: Upstream = await startUpstream(opts.tokenDelayMs, [`tokens-${N}`, "slow-0"]);
    procs.push(upstream);
    const gw: Gateway = await startLlmgw(upstream.url, dataDir);
    procs.push(gw);
    const T: Record<TargetName, Target | undefined> = {
      direct: {
        name: "direct",
        host: "127.0.0.1",
        port: upstream.port,
        path: "/v1/chat/completions",
        headers: {},
      },
      llmgw: {
        name: "llmgw",
        host: "127.0.0.1",
        port: gw.port,
        path: "/v1/chat/completions",
        headers: { authorization: `Bearer ${gw.key}` },
      },
      portkey: undefined,
    };
    const targets: BenchResult["targets"] = [
      { name: "direct", url: upstream.url, pid: upstream.pid, note: "fake Ollama, /v1/chat/completions" },
      { name: "llmgw", url: gw.url, pid: gw.pid, version: VERSION },
    ];
    let portkeyPid = 0;
    let portkeyOutput = () => "";
    if (opts.compare) {
      const pk = await startPortkey(
        `${opts.workDir}/portkey`,
        () => progress.note("installing Portkey (npm)…"),
      );
      procs.push(pk);
      portkeyPid = pk.pid;
      portkeyOutput = pk.output;
      T.portkey = {
        name: "portkey",
        host: "127.0.0.1",
        port: pk.port,
        path: "/v1/chat/completions",
        headers: { "x-portkey-provider": "ollama", "x-portkey-custom-host": upstream.url },
      };
      targets.push({ name: "portkey", url: pk.url, pid: pk.pid, version: pk.version });
    }
    const names = (["direct", "llmgw", "portkey"] as TargetName[]).filter((n) => T[n]);
    const pidOf: Record<TargetName, number> = { direct: upstream.pid, llmgw: gw.pid, portkey: portkeyPid };
    /** Runs a load and notes the CPU time the gateway and the upstream spent per request. */
    const cpu = async (n: TargetName, load: () => Promise<Measurement>): Promise<Measurement> => {
      const t0 = readCpuMs(pidOf[n]), u0 = readCpuMs(upstream.pid);
      const m = await load();
      const t1 = readCpuMs(pidOf[n]), u1 = readCpuMs(upstream.pid);
      const per = (a: number | null, b: number | null) =>
        a !== null && b !== null && m.totalCompleted > 0 ? round(((b - a) * 1000) / m.totalCompleted) : null;
      return {
        ...m,
        cpu: { targetUsPerReq: n === "direct" ? null : per(t0, t1), upstreamUsPerReq: per(u0, u1) },
      };
    };
    const gwNames = names.filter((n) => n !== "direct");
    const model = `tokens-${N}`;
    const jsonBody = JSON.stringify({ model, messages: [{ role: "user", content: "Say hello" }] });
    const streamBody = JSON.stringify({
      model,
      stream: true,
      messages: [{ role: "user", content: "Say hello" }],
    });
    const chunkBody = (n: number) =>
      JSON.stringify({ model: "slow-0", stream: true, messages: [{ role: "user", content: words(n) }] });
    const streamRate = Math.max(1, Math.round(opts.rate / 5));

    // The plan: a list of steps, so that progress can say "i of n".
    const steps: { label: string; run: () => Promise<string> }[] = [];
    const add = (label: string, run: () => Promise<string>) => steps.push({ label, run });
    const fmt = (m: Measurement) =>
      `${m.rps} req/s, p50 ${m.latency.p50} ms, p99 ${m.latency.p99} ms${
        m.ttft ? `, ttft p50 ${m.ttft.p50} ms` : ""
      }${m.errors ? `, ${m.errors} errors` : ""}${
        m.cpu?.targetUsPerReq ? `, cpu ${m.cpu.targetUsPerReq} µs/req` : ""
      }${m.cpu?.upstreamUsPerReq ? ` (upstream ${m.cpu.upstreamUsPerReq})` : ""}`;
    const record = (target: TargetName, kind: "json" | "stream", m: Measurement): Run => ({
      target,
      kind,
      ...m,
    });

    // Warm-up (JIT, pools, model discovery); not recorded.
    for (const n of names) {
      add(`warm-up ${n}`, async () => {
        const m = await cpu(
          n,
          () =>
            runLoadgen(T[n]!, jsonBody, { mode: "closed", connections: 20, durationMs: full ? 2000 : 1000 }),
        );
        await runLoadgen(T[n]!, streamBody, {
          mode: "closed",
          connections: 20,
          durationMs: full ? 1000 : 500,
        });
        return fmt(m);
      });
    }

    // Generator ceilings against the fake directly.
    const generators: BenchResult["generators"] = [];
    if (full) {
      add("ceiling: loadgen (json, 50 conns) → direct", async () => {
        const m = await runLoadgen(T.direct!, jsonBody, {
          mode: "closed",
          connections: 50,
          durationMs: D * 1000,
        });
        generators.push({ name: "loadgen", kind: "json", available: true, rps: m.rps });
        return fmt(m);
      });
      add("ceiling: loadgen (stream, 50 conns) → direct", async () => {
        const m = await runLoadgen(T.direct!, streamBody, {
          mode: "closed",
          connections: 50,
          durationMs: D * 1000,
        });
        generators.push({ name: "loadgen", kind: "stream", available: true, rps: m.rps });
        return fmt(m);
      });
      add("ceiling: wrk (json, 50 conns) → direct", async () => {
        if (!tools.wrk) {
          generators.push({
            name: "wrk",
            kind: "json",
            available: false,
            rps: null,
            note: "wrk not installed",
          });
          return "wrk not available";
        }
        const m = await runWrk(T.direct!, jsonBody, 50, D);
        generators.push({ name: "wrk", kind: "json", available: true, rps: m.rps });
        return fmt(m);
      });
      add("ceiling: hey (json, 50 conns, no rate cap) → direct", async () => {
        if (!tools.hey) {
          generators.push({
            name: "hey",
            kind: "json",
            available: false,
            rps: null,
            note: "hey not installed",
          });
          return "hey not available";
        }
        const m = await runHey(T.direct!, jsonBody, 50, 0, D);
        generators.push({ name: "hey", kind: "json", available: true, rps: m.rps });
        return fmt(m);
      });
    }

    // Overhead at a fixed offered load.
    const overheadJson: Run[] = [], overheadStream: Run[] = [], heyRuns: Run[] = [];
    for (const n of names) {
      add(`overhead json ${opts.rate}/s × ${opts.connections} conns → ${n}`, async () => {
        const m = await cpu(n, () =>
          runLoadgen(T[n]!, jsonBody, {
            mode: "rate",
            rate: opts.rate,
            connections: opts.connections,
            durationMs: D * 1000,
            warmupMs: 500,
          }));
        overheadJson.push(record(n, "json", m));
        return fmt(m);
      });
    }
    if (full && tools.hey) {
      for (const n of names) {
        add(`overhead json (hey) ${opts.rate}/s × ${opts.connections} conns → ${n}`, async () => {
          const m = await cpu(n, () => runHey(T[n]!, jsonBody, opts.connections, opts.rate, D));
          heyRuns.push({ target: n, kind: "json", ...m });
          return fmt(m);
        });
      }
    }
    for (const n of names) {
      add(`overhead stream ${streamRate}/s × ${opts.connections} conns → ${n}`, async () => {
        const m = await cpu(n, () =>
          runLoadgen(T[n]!, streamBody, {
            mode: "rate",
            rate: streamRate,
            connections: opts.connections,
            durationMs: D * 1000,
            warmupMs: 500,
            stream: true,
          }));
        overheadStream.push(record(n, "stream", m));
        return fmt(m);
      });
    }

    // Per-chunk cost: streams of two lengths, one at a time, no delay between chunks.
    const chunkRuns: Run[] = [];
    const chunkP50 = new Map<string, number>();
    if (full) {
      for (const n of ["direct", "llmgw"] as TargetName[]) {
        for (const len of [CHUNKS_SHORT, CHUNKS_LONG]) {
          add(`per-chunk: ${len}-chunk streams, 1 conn → ${n}`, async () => {
            const m = await cpu(n, () =>
              runLoadgen(T[n]!, chunkBody(len), {
                mode: "count",
                requests: Math.max(100, Math.round(100 * D)),
                connections: 1,
                warmupMs: 0,
                stream: true,
              }));
            chunkRuns.push(record(n, "stream", m));
            chunkP50.set(`${n}:${len}`, m.latency.p50);
            return fmt(m);
          });
        }
      }
    }

    // Capacity at saturation.
    const capacity: Run[] = [];
    const conns = full ? opts.capacityConnections : [50];
    for (const c of conns) {
      for (const kind of ["json", "stream"] as const) {
        for (const n of names) {
          if (!full && n === "direct") continue;
          const useWrk = kind === "json" && tools.wrk;
          add(`capacity ${kind} ${c} conns${useWrk ? " (wrk)" : ""} → ${n}`, async () => {
            const m = await cpu(
              n,
              () =>
                useWrk
                  ? runWrk(T[n]!, jsonBody, c, D)
                  : runLoadgen(T[n]!, kind === "json" ? jsonBody : streamBody, {
                    mode: "closed",
                    connections: c,
                    durationMs: D * 1000,
                    warmupMs: 300,
                    stream: kind === "stream",
                  }),
            );
            capacity.push({ target: n, kind, ...m });
            return fmt(m);
          });
        }
      }
    }

    // Latency against offered load (the chart), open loop.
    const sweep: SweepPoint[] = [];
    if (full) {
      const rates = [250, 500, 1000, 2000, 4000, 8000, 16000];
      const saturated = new Set<TargetName>();
      for (const r of rates) {
        for (const n of names) {
          add(`sweep ${r}/s → ${n}`, async () => {
            if (saturated.has(n)) return "skipped (saturated at a lower rate)";
            const m = await cpu(n, () =>
              runLoadgen(T[n]!, jsonBody, {
                mode: "rate",
                rate: r,
                connections: Math.max(50, Math.ceil(r / 100)),
                durationMs: Math.max(1500, (D * 1000) / 2),
                warmupMs: 300,
              }));
            const sat = m.rps < 0.9 * r || m.errorRate > 0.01;
            if (sat) saturated.add(n);
            sweep.push({
              target: n,
              offeredRps: r,
              rps: m.rps,
              latency: m.latency,
              errorRate: m.errorRate,
              saturated: sat,
            });
            return fmt(m) + (sat ? " (saturated)" : "");
          });
        }
      }
    }

    // Memory growth across many requests.
    let growth: BenchResult["memory"]["growth"];
    if (full && opts.rssRequests > 0) {
      add(`memory: ${opts.rssRequests} requests → llmgw`, async () => {
        await runLoadgen(T.llmgw!, jsonBody, { mode: "count", requests: 20_000, connections: 50 });
        const before = readMemory(gw.pid)?.rssKb ?? 0;
        // In five parts, noting the RSS after each: a leak climbs, a heap settling levels off.
        const samplesKb: number[] = [];
        let completed = 0, errors = 0;
        for (let part = 0; part < 5; part++) {
          const m = await runLoadgen(T.llmgw!, jsonBody, {
            mode: "count",
            requests: Math.ceil(opts.rssRequests / 5),
            connections: 50,
          });
          completed += m.completed;
          errors += m.errors;
          samplesKb.push(readMemory(gw.pid)?.rssKb ?? 0);
        }
        await new Promise((r) => setTimeout(r, 1000));
        const after = readMemory(gw.pid)?.rssKb ?? 0;
        growth = {
          requests: completed,
          beforeKb: before,
          afterKb: after,
          growthKb: after - before,
          samplesKb,
        };
        const m = { completed, errors };
        return `${m.completed} requests, ${m.errors} errors; RSS ${before} → ${samplesKb.join(" → ")} kB`;
      });
    }

    for (const [i, s] of steps.entries()) {
      progress.step(i + 1, steps.length, s.label);
      progress.done(await s.run());
    }

    const mem = (pid: number) => {
      const m = readMemory(pid);
      return { peakRssKb: m?.hwmKb ?? null, rssKb: m?.rssKb ?? null };
    };
    const memory: BenchResult["memory"] = { llmgw: mem(gw.pid), ...(growth ? { growth } : {}) };
    if (portkeyPid) memory.portkey = mem(portkeyPid);

    const overhead = {
      json: overheadOf(overheadJson, opts.rate, opts.connections, gwNames, false),
      stream: overheadOf(overheadStream, streamRate, opts.connections, gwNames, true),
    };
    if (heyRuns.length) {
      const h = (n: TargetName) => heyRuns.find((r) => r.target === n)!.latency;
      overhead.json.hey = {
        runs: heyRuns,
        llmgw: diff(h("llmgw"), h("direct")),
        ...(T.portkey ? { portkey: diff(h("portkey"), h("direct")) } : {}),
      };
    }
    const perChunk = perChunkOf(chunkP50, chunkRuns, CHUNKS_SHORT, CHUNKS_LONG);
    const { workDir: _w, install: _i, ...shown } = opts;
    const notes = failureNotes(names, [...capacity, ...overheadJson, ...overheadStream], portkeyOutput());
    const result: BenchResult = {
      tool: "llmgw bench",
      version: VERSION,
      startedAt: new Date(started).toISOString(),
      durationS: 0,
      mode: opts.mode,
      compare: opts.compare,
      options: shown,
      machine: { cpus: navigator.hardwareConcurrency, loadavgBefore, busyBefore },
      targets,
      generators,
      overhead,
      perChunk,
      capacity,
      sweep,
      memory,
      gates: [],
      ok: false,
      notes,
    };
    result.gates = evaluateGates(result);
    result.ok = result.gates.every((g) => !g.asserted || g.pass === true);
    result.durationS = round((Date.now() - started) / 1000);
    return result;
  } finally {
    await cleanup();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}
