/**
 * Small helpers shared by the end-to-end tests of keys, auth, limits and usage: an SDK
 * client for the admin API, key creation over HTTP, polling, and free ports.
 */
import OpenAI from "openai";
import { fileURLToPath } from "node:url";
import type { Harness } from "../harness.ts";

/** A key as `POST /admin/keys` returns it (the raw key is only in this answer). */
export interface CreatedKey {
  id: string;
  object: "api_key";
  name: string;
  prefix: string;
  key: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  concurrency: number | null;
  budget_usd: number | null;
  budget_period: string;
  admin: boolean;
  metadata: Record<string, unknown> | null;
}

/** An SDK client rooted at the server (not `/v1`), for `/admin/*` through `client.get/post/…`. */
export function adminClient(url: string, apiKey: string): OpenAI {
  return new OpenAI({ apiKey, baseURL: url, maxRetries: 0, timeout: 20_000 });
}

/** An SDK client on `<url>/v1` (for servers not started by the harness). */
export function v1Client(url: string, apiKey: string): OpenAI {
  return new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0, timeout: 20_000 });
}

/** An SDK client that sends no Authorization header at all. */
export function keylessClient(url: string): OpenAI {
  return new OpenAI({
    apiKey: "unused",
    baseURL: `${url}/v1`,
    maxRetries: 0,
    timeout: 20_000,
    defaultHeaders: { Authorization: null },
  });
}

/** Creates a key through `POST /admin/keys` with the harness's admin key. */
export function createKey(
  h: Pick<Harness, "url" | "adminKey">,
  body: Record<string, unknown>,
): Promise<CreatedKey> {
  return adminClient(h.url, h.adminKey!).post<CreatedKey>("/admin/keys", { body });
}

/** SHA-256 hex of a string (what the store keeps of a key). */
export async function sha256Hex(s: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Polls `fn` until it returns true; returns the elapsed ms, throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  fn: () => Promise<boolean> | boolean,
  timeoutMs = 5_000,
  everyMs = 25,
): Promise<number> {
  const start = performance.now();
  while (true) {
    if (await fn()) return performance.now() - start;
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A TCP port that was free a moment ago (bind port 0, read it, close). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Settles every promise and returns the outcomes (values, or the thrown errors). */
export async function outcomes<T>(ps: Promise<T>[]): Promise<(T | Error)[]> {
  const rs = await Promise.allSettled(ps);
  return rs.map((r) => r.status === "fulfilled" ? r.value : r.reason as Error);
}

/** A chat request body for the SDK. */
export function ask(model: string, content = "hello there"): {
  model: string;
  messages: { role: "user"; content: string }[];
} {
  return { model, messages: [{ role: "user", content }] };
}

/** The repository root (where main.ts is). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Only what deno needs to run (no LLMGW_* / OPENROUTER_* leaking in from the parent). */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const v = Deno.env.get(name);
    if (v !== undefined) env[name] = v;
  }
  return env;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A main.ts <args>` with a clean environment plus `env`; killed after 60 s. */
export async function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    clearEnv: true,
    env: { ...baseEnv(), ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, 60_000);
  try {
    const out = await child.output();
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Like {@link runCli}, but fails unless the command exits 0, and parses stdout as JSON. */
export async function runCliJson<T = unknown>(args: string[], env: Record<string, string>): Promise<T> {
  const r = await runCli(args, env);
  if (r.code !== 0) {
    throw new Error(`llmgw ${args.join(" ")} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  }
  return JSON.parse(r.stdout) as T;
}
