/**
 * `llmgw bench`: llmgw's latency overhead and capacity, on loopback only. Starts a fake
 * upstream (fake Ollama, its own process), llmgw as a user runs it (`deno run -A main.ts
 * serve`, auth on with a real key, rate limits on, usage recording on), optionally
 * Portkey's gateway (`--compare`), and load generators in their own processes (wrk,
 * hey, and the bench's own loadgen for open-loop rates and streams).
 *
 * - default: every measurement; `--compare` adds Portkey side by side.
 * - `--ci`: the quick run of `.ci/run` (~60 s); exits 1 when an asserted gate fails.
 * - `--json` prints the result as JSON; `--out DIR` writes bench.json, bench.md, latency.svg.
 */
import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { renderMarkdown, renderSvg, renderText } from "./bench/report.ts";
import { type Progress, runBench } from "./bench/run.ts";
import type { BenchOptions } from "./bench/types.ts";

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got '${v}'`);
  return n;
}

function nonNegative(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got '${v}'`);
  return n;
}

function list(v: string): number[] {
  const out = v.split(",").map((s) => Number(s.trim()));
  if (!out.length || out.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new InvalidArgumentError(`expected a comma-separated list of positive integers, got '${v}'`);
  }
  return out;
}

/** Progress on stderr: a live status line on a terminal, one line per step otherwise. */
function progressDisplay(quiet: boolean): Progress & { stop(): void } {
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  const write = (s: string) => {
    if (!quiet) Deno.stderr.writeSync(enc.encode(s));
  };
  let label = "", started = 0, prefix = "";
  const timer = tty && !quiet
    ? setInterval(() => {
      if (label) {
        write(`\r\x1b[2K${prefix} ${label} … ${((performance.now() - started) / 1000).toFixed(1)} s`);
      }
    }, 200)
    : undefined;
  return {
    step(i, n, l) {
      prefix = `[${String(i).padStart(String(n).length)}/${n}]`;
      label = l;
      started = performance.now();
      if (tty) write(`\r\x1b[2K${prefix} ${label} …`);
    },
    done(summary) {
      const s = ((performance.now() - started) / 1000).toFixed(1);
      write(`${tty ? "\r\x1b[2K" : ""}${prefix} ${label}: ${summary} (${s} s)\n`);
      label = "";
    },
    note(text) {
      write(`${tty ? "\r\x1b[2K" : ""}note: ${text}\n`);
    },
    stop() {
      clearInterval(timer);
    },
  };
}

export function benchCommand() {
  return new Command("bench")
    .description("Measure llmgw's overhead and capacity against a fake upstream (loopback only)")
    .option("--ci", "quick gated run (~60 s): exit 1 when a spec target does not hold")
    .option("--compare", "also measure Portkey's open-source gateway (installed with npm into the work dir)")
    .option("--json", "print the result as JSON on stdout (progress stays on stderr)")
    .option("--out <dir>", "write bench.json, bench.md and latency.svg into DIR")
    .addOption(
      new Option("--duration <s>", "seconds per measurement (default 5; 1 for a smoke run)").argParser(
        positive,
      ),
    )
    .addOption(
      new Option("--rate <n>", "offered load of the overhead runs, req/s (streams: a fifth)").default(1000)
        .argParser(positive),
    )
    .addOption(
      new Option("--connections <n>", "connections of the overhead runs").default(50).argParser(positive),
    )
    .addOption(
      new Option("--capacity-connections <list>", "connection counts at saturation").default([1, 50, 500])
        .argParser(list),
    )
    .addOption(new Option("--tokens <n>", "chunks per stream").default(20).argParser(positive))
    .addOption(
      new Option("--token-delay <ms>", "upstream delay between chunks").default(1).argParser(nonNegative),
    )
    .addOption(
      new Option("--rss-requests <n>", "requests of the memory-growth run (0 skips it)").default(100_000)
        .argParser(
          nonNegative,
        ),
    )
    .option("--no-install", "do not install wrk/hey (apt-get) or Portkey (npm) when missing")
    .option("--work-dir <dir>", "where the bench keeps its files", "./data/bench")
    .option("-q, --quiet", "no progress display")
    .action(async (o) => {
      const opts: BenchOptions = {
        mode: o.ci ? "ci" : "full",
        compare: o.compare === true,
        durationS: o.duration ?? 5,
        rate: o.rate,
        connections: Math.round(o.connections),
        capacityConnections: [...o.capacityConnections],
        tokens: Math.round(o.tokens),
        tokenDelayMs: o.tokenDelay,
        rssRequests: Math.round(o.rssRequests),
        install: o.install !== false,
        workDir: o.workDir.replace(/\/+$/, ""),
      };
      const progress = progressDisplay(o.quiet === true);
      let result;
      try {
        result = await runBench(opts, progress);
      } finally {
        progress.stop();
      }
      if (o.out) {
        const dir = o.out.replace(/\/+$/, "");
        await Deno.mkdir(dir, { recursive: true });
        await Deno.writeTextFile(`${dir}/bench.json`, JSON.stringify(result, null, 2) + "\n");
        const chart = result.sweep.length ? "latency.svg" : undefined;
        if (chart) await Deno.writeTextFile(`${dir}/${chart}`, renderSvg(result));
        await Deno.writeTextFile(`${dir}/bench.md`, renderMarkdown(result, chart));
      }
      if (o.json) console.log(JSON.stringify(result, null, 2));
      else console.log(renderText(result));
      if (o.out && !o.json) {
        console.log(`\nwrote ${o.out}/bench.json, bench.md${result.sweep.length ? ", latency.svg" : ""}`);
      }
      if (opts.mode === "ci" && !result.ok) Deno.exitCode = 1;
    });
}
