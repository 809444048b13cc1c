/**
 * Process management for the bench: the fake upstream, llmgw (`deno run -A main.ts
 * serve`, configured through the environment as a user would), Portkey's gateway
 * (`npm install --prefix` into its own folder), the bench's load generator, wrk and
 * hey; readiness checks, resident memory from /proc, and clean stops. Everything
 * listens on and talks to 127.0.0.1 only.
 */
import { KeyAdmin } from "../../core/key_admin.ts";
import { openStore } from "../../core/store/open.ts";

const ROOT = new URL("../../", import.meta.url);
const rootPath = (p: string) => decodeURIComponent(new URL(p, ROOT).pathname);

export interface Proc {
  name: string;
  pid: number;
  /** stderr/stdout tail, for error messages. */
  output(): string;
  /** Whether the process has ended. */
  exited(): boolean;
  stop(): Promise<void>;
}

/** Memory of a process from /proc/<pid>/status (kB); null when unavailable. */
export function readMemory(pid: number): { rssKb: number; hwmKb: number } | null {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rss = /VmRSS:\s+(\d+)/.exec(s), hwm = /VmHWM:\s+(\d+)/.exec(s);
    if (!rss || !hwm) return null;
    return { rssKb: Number(rss[1]), hwmKb: Number(hwm[1]) };
  } catch {
    return null;
  }
}

/** CPU time (user + system, all threads) a process has used so far, in ms; null when unavailable. */
export function readCpuMs(pid: number): number | null {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // fields 14 and 15 (utime, stime) are at 11 and 12 after the command name, in clock ticks (100/s)
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return null;
  }
}

/** A free loopback port (bound, then released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The environment the children get: nothing from ours but what running programs needs. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "LANG", "NPM_CONFIG_CACHE"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** Spawns a long-running child; stdin stays open so children that watch it exit with us. */
function spawn(name: string, cmd: string, args: string[], env: Record<string, string>, cwd?: string): Proc & {
  lines: ReadableStream<string>;
} {
  const child = new Deno.Command(cmd, {
    args,
    env: { ...baseEnv(), ...env },
    clearEnv: true,
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let tail = "";
  const keep = (s: string) => {
    tail = (tail + s).slice(-4000);
  };
  const [out, forLines] = child.stdout.pipeThrough(new TextDecoderStream()).tee();
  const lines = forLines.pipeThrough(lineSplitter());
  (async () => {
    for await (const s of child.stderr.pipeThrough(new TextDecoderStream())) keep(s);
  })().catch(() => {});
  (async () => {
    for await (const s of out) keep(s);
  })().catch(() => {});
  let stopped: Promise<void> | undefined;
  let ended = false;
  child.status.then(() => (ended = true));
  return {
    name,
    pid: child.pid,
    lines,
    output: () => tail,
    exited: () => ended,
    stop() {
      stopped ??= (async () => {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }, 5000);
        await child.status;
        clearTimeout(timer);
        await child.stdin.close().catch(() => {});
        await lines.cancel().catch(() => {});
      })();
      return stopped;
    },
  };
}

function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, c) {
      rest += chunk;
      let nl;
      while ((nl = rest.indexOf("\n")) >= 0) {
        c.enqueue(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
      }
    },
  });
}

/** Polls `url` until it answers (any status) or `ms` pass. */
export async function waitHttp(url: string, ms: number, proc?: Proc): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc?.exited()) throw new Error(`${proc.name} exited before it answered:\n${proc.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${proc?.name ?? url} did not start within ${ms} ms${proc ? `:\n${proc.output()}` : ""}`);
}

export interface Upstream extends Proc {
  url: string;
  port: number;
}

/** The fake Ollama in its own process. */
export async function startUpstream(tokenDelayMs: number, models: string[]): Promise<Upstream> {
  const p = spawn(
    "fake upstream",
    Deno.execPath(),
    [
      "run",
      "-A",
      rootPath("cli/bench/upstream_main.ts"),
      String(tokenDelayMs),
      models.join(","),
    ],
    {},
    rootPath("."),
  );
  const reader = p.lines.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const first = await Promise.race([
    reader.read(),
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error("fake upstream did not start")), 30_000);
    }),
  ]).catch(async (err) => {
    await p.stop();
    throw new Error(`${err.message}:\n${p.output()}`);
  }).finally(() => clearTimeout(timer));
  reader.releaseLock();
  const port = (JSON.parse(first.value ?? "{}") as { port?: number }).port;
  if (!port) throw new Error(`fake upstream did not report its port:\n${p.output()}`);
  return { ...p, url: `http://127.0.0.1:${port}`, port };
}

export interface Gateway extends Proc {
  url: string;
  port: number;
  /** The bench key (created through the store before llmgw starts). */
  key: string;
}

/**
 * llmgw as a user runs it: `deno run -A main.ts serve`, env config, auth on with a key
 * created through the store (generous limits), the in-process limiter, usage recording
 * to the libSQL file in `dataDir`.
 */
export async function startLlmgw(upstreamUrl: string, dataDir: string): Promise<Gateway> {
  await Deno.mkdir(dataDir, { recursive: true });
  const store = await openStore(undefined, { dataDir });
  let key: string;
  try {
    ({ key } = await new KeyAdmin(store).create({
      name: "bench",
      rpm: 10_000_000,
      tpm: 2_000_000_000,
      concurrency: 100_000,
    }));
  } finally {
    await store.close();
  }
  const port = freePort();
  const p = spawn("llmgw", Deno.execPath(), ["run", "-A", rootPath("main.ts"), "serve"], {
    LLMGW_HOST: "127.0.0.1",
    LLMGW_PORT: String(port),
    LLMGW_DATA_DIR: dataDir,
    LLMGW_AUTH: "true",
    LLMGW_LOG_LEVEL: "warn",
    OLLAMA_BASE_URL: upstreamUrl,
    // Nothing may leave the machine: OpenRouter stays unconfigured and points at loopback.
    OPENROUTER_BASE_URL: "http://127.0.0.1:9/api/v1",
  }, rootPath("."));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHttp(`${url}/health`, 30_000, p);
  } catch (err) {
    await p.stop();
    throw err;
  }
  return { ...p, url, port, key };
}

export interface Portkey extends Proc {
  url: string;
  port: number;
  version: string;
}

export const PORTKEY_VERSION = "1.15.2";

/** Installs `@portkey-ai/gateway` into `dir` (once) and starts it headless on a free port. */
export async function startPortkey(where: string, onInstall?: () => void): Promise<Portkey> {
  const dir = where.startsWith("/") ? where : `${Deno.cwd()}/${where}`;
  const bin = `${dir}/node_modules/@portkey-ai/gateway/build/start-server.js`;
  const installed = await Deno.stat(bin).then(() => true, () => false);
  if (!installed) {
    onInstall?.();
    await Deno.mkdir(dir, { recursive: true });
    const out = await new Deno.Command("npm", {
      args: ["install", "--prefix", dir, `@portkey-ai/gateway@${PORTKEY_VERSION}`, "--no-audit", "--no-fund"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`npm install @portkey-ai/gateway failed:\n${new TextDecoder().decode(out.stderr)}`);
    }
  }
  const pkg = JSON.parse(await Deno.readTextFile(`${dir}/node_modules/@portkey-ai/gateway/package.json`));
  const port = freePort();
  const p = spawn("portkey", "node", [bin, `--port=${port}`, "--headless"], { NODE_ENV: "production" }, dir);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHttp(`${url}/`, 60_000, p);
  } catch (err) {
    await p.stop();
    throw err;
  }
  return { ...p, url, port, version: String(pkg.version) };
}

/** Whether a program is on PATH. */
export async function have(cmd: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** Installs wrk and hey from Debian when missing (root only); returns which are present. */
export async function ensureTools(
  install: boolean,
  onInstall?: (what: string) => void,
): Promise<{ wrk: boolean; hey: boolean }> {
  let wrk = await have("wrk"), hey = await have("hey");
  if ((!wrk || !hey) && install && Deno.uid?.() === 0 && await have("apt-get")) {
    const missing = [!wrk && "wrk", !hey && "hey"].filter(Boolean) as string[];
    onInstall?.(missing.join(" "));
    const run = (args: string[]) =>
      new Deno.Command("apt-get", {
        args,
        stdout: "null",
        stderr: "null",
        env: { DEBIAN_FRONTEND: "noninteractive" },
      }).output();
    let r = await run(["install", "-y", "-qq", ...missing]);
    if (!r.success) {
      await run(["update", "-qq"]);
      r = await run(["install", "-y", "-qq", ...missing]);
    }
    wrk = await have("wrk");
    hey = await have("hey");
  }
  return { wrk, hey };
}
