/**
 * Test harness: a real llmgw server on a loopback port in front of real fake
 * upstreams (a fake Ollama and a fake OpenRouter), with a temporary libSQL file, and
 * the official `openai` SDK as the client. Nothing of llmgw's own code is mocked.
 */
import OpenAI from "openai";
import { buildConfig, type ConfigFile } from "../core/config.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { type RunningServer, startServer } from "../cli/serve.ts";
import { type FakeServer, startFakeOllama } from "./fakes/fake_ollama.ts";
import { type FakeOpenAI, startFakeOpenAI } from "./fakes/fake_openai.ts";

export const OPENROUTER_TEST_KEY = "sk-or-test-upstream-key-0000000000";

export interface Harness {
  url: string;
  server: RunningServer;
  ollama: FakeServer;
  openrouter: FakeOpenAI;
  dataDir: string;
  /** Lines the server logged (for the secrets test). */
  logs: string[];
  /** The admin key (when auth is on). */
  adminKey?: string;
  /** An SDK client with the given key (admin key by default; no retries). */
  client(apiKey?: string, opts?: { maxRetries?: number }): OpenAI;
  close(): Promise<void>;
}

export interface HarnessOptions {
  auth?: boolean;
  env?: Record<string, string>;
  file?: ConfigFile;
  /** Skip the fake OpenRouter's key (provider unconfigured). */
  noOpenRouterKey?: boolean;
  logLevel?: "debug" | "info" | "warn" | "error";
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const ollama = startFakeOllama();
  const openrouter = startFakeOpenAI({ openrouter: true, apiKey: OPENROUTER_TEST_KEY });
  const dataDir = await Deno.makeTempDir({ prefix: "llmgw-test-" });
  const adminKey = opts.auth ? "sk-llmgw-testadminkey0000000000000000000000000000" : undefined;
  const env: Record<string, string> = {
    OLLAMA_BASE_URL: ollama.url,
    OPENROUTER_BASE_URL: openrouter.baseUrl,
    LLMGW_DATA_DIR: dataDir,
    LLMGW_AUTH: opts.auth ? "true" : "false",
    ...(adminKey ? { LLMGW_ADMIN_KEY: adminKey } : {}),
    ...(opts.noOpenRouterKey ? {} : { OPENROUTER_API_KEY: OPENROUTER_TEST_KEY }),
    ...opts.env,
  };
  const config = buildConfig(opts.file ?? {}, env, { port: 0, host: "127.0.0.1" });
  const logs: string[] = [];
  const log: Logger = createLogger({ level: opts.logLevel ?? "debug", sink: (line) => logs.push(line) });
  const server = await startServer(config, log, { quiet: false });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    url,
    server,
    ollama,
    openrouter,
    dataDir,
    logs,
    adminKey,
    client(apiKey = adminKey ?? "unused", o = {}) {
      return new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: o.maxRetries ?? 0, timeout: 20_000 });
    },
    async close() {
      await server.shutdown();
      await Promise.all([ollama.close(), openrouter.close()]);
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

/** Raw fetch against the harness (for what the SDK cannot send: bad JSON, wrong methods). */
export function raw(h: Harness, path: string, init: RequestInit & { key?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const key = init.key ?? h.adminKey;
  if (key && !headers.has("authorization")) headers.set("authorization", `Bearer ${key}`);
  if (init.body && !headers.has("content-type")) headers.set("content-type", "application/json");
  return fetch(`${h.url}${path}`, { ...init, headers });
}
