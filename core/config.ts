/**
 * Configuration: environment variables (`OLLAMA_BASE_URL`, `OPENROUTER_API_KEY`,
 * `LLMGW_*`, a `.env` file through `deno run --env-file`) and an optional YAML or
 * JSON file, validated with zod into one frozen `Config` that is passed down
 * explicitly. Nothing reads the environment at import time.
 *
 * Precedence: command-line flags > environment > config file > defaults.
 */
import { z } from "zod";
import { parse as parseYaml } from "yaml";

const ProviderFile = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/i, "letters, digits, '.', '_' or '-'"),
  type: z.enum(["ollama", "openrouter", "openai"]),
  base_url: z.url().optional(),
  api_key: z.string().optional(),
  /** Name of the environment variable holding the key (preferred over api_key). */
  api_key_env: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  timeout_ms: z.number().int().positive().optional(),
  referer: z.string().optional(),
  title: z.string().optional(),
});

const Price = z.strictObject({
  /** USD per million prompt tokens. */
  prompt: z.number().nonnegative(),
  /** USD per million completion tokens. */
  completion: z.number().nonnegative(),
});

const LimitsFile = z.strictObject({
  rpm: z.number().int().positive().optional(),
  tpm: z.number().int().positive().optional(),
  concurrency: z.number().int().positive().optional(),
});

/** The config file's schema (snake_case, as operators write YAML). */
export const ConfigFile = z.strictObject({
  server: z.strictObject({
    host: z.string().optional(),
    port: z.number().int().min(0).max(65535).optional(),
    max_body_bytes: z.number().int().positive().optional(),
    cors_origins: z.array(z.string()).optional(),
  }).optional(),
  default_model: z.string().optional(),
  aliases: z.record(z.string(), z.string()).optional(),
  providers: z.array(ProviderFile).optional(),
  upstream_timeout_ms: z.number().int().positive().optional(),
  stream_idle_timeout_ms: z.number().int().positive().optional(),
  model_cache_ttl_ms: z.number().int().positive().optional(),
  data_dir: z.string().optional(),
  database_url: z.string().optional(),
  redis_url: z.string().optional(),
  auth: z.strictObject({
    enabled: z.boolean().optional(),
    /** Requests without a key run as this key id (its limits apply). */
    anonymous_key: z.string().optional(),
    key_cache_ttl_ms: z.number().int().positive().optional(),
  }).optional(),
  global_limits: LimitsFile.optional(),
  pricing: z.record(z.string(), Price).optional(),
  log_level: z.enum(["debug", "info", "warn", "error"]).optional(),
});
export type ConfigFile = z.infer<typeof ConfigFile>;

export interface ProviderConfig {
  name: string;
  type: "ollama" | "openrouter" | "openai";
  baseUrl: string;
  apiKey?: string;
  headers: Record<string, string>;
  timeoutMs: number;
  referer?: string;
  title?: string;
}

export interface Config {
  host: string;
  port: number;
  maxBodyBytes: number;
  corsOrigins: string[];
  /** On SIGINT/SIGTERM, how long in-flight requests may finish before they are cut. */
  shutdownGraceMs: number;
  defaultModel?: string;
  aliases: Record<string, string>;
  providers: ProviderConfig[];
  upstreamTimeoutMs: number;
  streamIdleTimeoutMs: number;
  modelCacheTtlMs: number;
  dataDir: string;
  databaseUrl?: string;
  redisUrl?: string;
  authEnabled: boolean;
  adminKey?: string;
  anonymousKey?: string;
  keyCacheTtlMs: number;
  globalLimits: { rpm?: number; tpm?: number; concurrency?: number };
  /** USD per million tokens, by model name (as requested or as routed). */
  pricing: Record<string, { prompt: number; completion: number }>;
  logLevel: "debug" | "info" | "warn" | "error";
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Formats zod issues as `path: message` lines. */
function describe(err: z.ZodError, source: string): string {
  const lines = err.issues.map((i) => `  - ${i.path.join(".") || "(root)"}: ${i.message}`);
  return `Invalid configuration in ${source}:\n${lines.join("\n")}`;
}

/** Reads and validates a YAML or JSON config file. */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${path}: ${err instanceof Error ? err.message : err}`);
  }
  let raw: unknown;
  try {
    raw = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      `Config file ${path} is not valid ${/\.json$/i.test(path) ? "JSON" : "YAML"}: ${
        err instanceof Error ? err.message.split("\n")[0] : err
      }`,
    );
  }
  const parsed = ConfigFile.safeParse(raw ?? {});
  if (!parsed.success) throw new ConfigError(describe(parsed.error, path));
  return parsed.data;
}

function intEnv(
  env: Record<string, string | undefined>,
  name: string,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const v = env[name]?.trim();
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n > max) {
    throw new ConfigError(`${name} must be an integer from 0 to ${max}, got '${env[name]}'`);
  }
  return n;
}

const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

function logLevelEnv(env: Record<string, string | undefined>): Config["logLevel"] | undefined {
  const v = env.LLMGW_LOG_LEVEL?.trim().toLowerCase();
  if (!v) return undefined;
  if (!(LOG_LEVELS as readonly string[]).includes(v)) {
    throw new ConfigError(
      `LLMGW_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got '${env.LLMGW_LOG_LEVEL}'`,
    );
  }
  return v as Config["logLevel"];
}

function boolEnv(env: Record<string, string | undefined>, name: string): boolean | undefined {
  const v = env[name]?.toLowerCase();
  if (v === undefined || v === "") return undefined;
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off"].includes(v)) return false;
  throw new ConfigError(`${name} must be true or false, got '${env[name]}'`);
}

export interface LoadOptions {
  env?: Record<string, string | undefined>;
  /** Path of a config file (else `LLMGW_CONFIG`). */
  file?: string;
  overrides?: Partial<Pick<Config, "host" | "port">>;
}

/**
 * Builds the Config from env + optional file + overrides.
 * @example
 * ```ts
 * const config = await loadConfig({ env: Deno.env.toObject(), file: "llmgw.yaml" });
 * ```
 */
export async function loadConfig(opts: LoadOptions = {}): Promise<Config> {
  const env = opts.env ?? {};
  const path = opts.file ?? env.LLMGW_CONFIG;
  const file: ConfigFile = path ? await readConfigFile(path) : {};
  return buildConfig(file, env, opts.overrides);
}

/** Pure part of loadConfig, for tests. */
export function buildConfig(
  file: ConfigFile,
  env: Record<string, string | undefined>,
  overrides: Partial<Pick<Config, "host" | "port">> = {},
): Config {
  const upstreamTimeoutMs = intEnv(env, "LLMGW_UPSTREAM_TIMEOUT_MS") ?? file.upstream_timeout_ms ?? 120_000;
  const providers: ProviderConfig[] = [];
  const fileProviders = file.providers ?? [];
  const names = new Set<string>();
  for (const p of fileProviders) {
    if (names.has(p.name)) {
      throw new ConfigError(`Invalid configuration: provider name '${p.name}' is used twice`);
    }
    names.add(p.name);
  }
  if (!fileProviders.some((p) => p.type === "ollama" || p.name === "ollama")) {
    providers.push({
      name: "ollama",
      type: "ollama",
      baseUrl: env.OLLAMA_BASE_URL || "http://localhost:11434",
      headers: {},
      timeoutMs: upstreamTimeoutMs,
    });
  }
  for (const p of fileProviders) {
    const apiKey = (p.api_key_env ? env[p.api_key_env] : undefined) || p.api_key ||
      (p.type === "openrouter" ? env.OPENROUTER_API_KEY : undefined) || undefined;
    const baseUrl = p.base_url ??
      (p.type === "ollama"
        ? env.OLLAMA_BASE_URL || "http://localhost:11434"
        : p.type === "openrouter"
        ? env.OPENROUTER_BASE_URL || "https://openrouter.ai/api/v1"
        : undefined);
    if (!baseUrl) {
      throw new ConfigError(`Invalid configuration: provider '${p.name}' (type openai) needs base_url`);
    }
    providers.push({
      name: p.name,
      type: p.type,
      baseUrl,
      apiKey,
      headers: p.headers ?? {},
      timeoutMs: p.timeout_ms ?? upstreamTimeoutMs,
      referer: p.referer ?? (p.type === "openrouter" ? env.LLMGW_OPENROUTER_REFERER : undefined),
      title: p.title ?? (p.type === "openrouter" ? env.LLMGW_OPENROUTER_TITLE : undefined),
    });
  }
  if (!fileProviders.some((p) => p.type === "openrouter" || p.name === "openrouter")) {
    providers.push({
      name: "openrouter",
      type: "openrouter",
      baseUrl: env.OPENROUTER_BASE_URL || "https://openrouter.ai/api/v1",
      apiKey: env.OPENROUTER_API_KEY || undefined,
      headers: {},
      timeoutMs: upstreamTimeoutMs,
      referer: env.LLMGW_OPENROUTER_REFERER,
      title: env.LLMGW_OPENROUTER_TITLE ?? "llmgw",
    });
  }
  const aliases = { ...file.aliases };
  for (const [k, v] of Object.entries(aliases)) {
    if (v === k) throw new ConfigError(`Invalid configuration: alias '${k}' points to itself`);
  }
  return Object.freeze({
    host: overrides.host ?? env.LLMGW_HOST ?? file.server?.host ?? "0.0.0.0",
    port: overrides.port ?? intEnv(env, "LLMGW_PORT", 65535) ?? file.server?.port ?? 9000,
    maxBodyBytes: intEnv(env, "LLMGW_MAX_BODY_BYTES") ?? file.server?.max_body_bytes ?? 20 * 1024 * 1024,
    shutdownGraceMs: intEnv(env, "LLMGW_SHUTDOWN_GRACE_MS") ?? 10_000,
    corsOrigins: env.LLMGW_CORS_ORIGINS?.split(",").map((s) => s.trim()).filter(Boolean) ??
      file.server?.cors_origins ?? ["*"],
    defaultModel: env.LLMGW_DEFAULT_MODEL || file.default_model,
    aliases,
    providers,
    upstreamTimeoutMs,
    streamIdleTimeoutMs: intEnv(env, "LLMGW_STREAM_IDLE_TIMEOUT_MS") ?? file.stream_idle_timeout_ms ??
      300_000,
    modelCacheTtlMs: intEnv(env, "LLMGW_MODEL_CACHE_TTL_MS") ?? file.model_cache_ttl_ms ?? 30_000,
    dataDir: env.LLMGW_DATA_DIR || file.data_dir || "./data",
    databaseUrl: env.LLMGW_DATABASE_URL || file.database_url,
    redisUrl: env.LLMGW_REDIS_URL || file.redis_url,
    authEnabled: boolEnv(env, "LLMGW_AUTH") ?? file.auth?.enabled ?? true,
    adminKey: env.LLMGW_ADMIN_KEY || undefined,
    anonymousKey: env.LLMGW_ANONYMOUS_KEY || file.auth?.anonymous_key,
    keyCacheTtlMs: intEnv(env, "LLMGW_KEY_CACHE_TTL_MS") ?? file.auth?.key_cache_ttl_ms ?? 5_000,
    globalLimits: {
      rpm: intEnv(env, "LLMGW_GLOBAL_RPM") ?? file.global_limits?.rpm,
      tpm: intEnv(env, "LLMGW_GLOBAL_TPM") ?? file.global_limits?.tpm,
      concurrency: intEnv(env, "LLMGW_GLOBAL_CONCURRENCY") ?? file.global_limits?.concurrency,
    },
    pricing: file.pricing ?? {},
    logLevel: logLevelEnv(env) ?? file.log_level ?? "info",
  });
}

/** A config summary safe to print: no secrets, only whether they are set. */
export function describeConfig(c: Config): Record<string, unknown> {
  return {
    listen: `${c.host}:${c.port}`,
    defaultModel: c.defaultModel ?? null,
    aliases: c.aliases,
    providers: c.providers.map((p) => ({
      name: p.name,
      type: p.type,
      baseUrl: p.baseUrl,
      apiKey: p.apiKey ? "set" : "not set",
    })),
    database: c.databaseUrl ? c.databaseUrl.replace(/\/\/[^@/]*@/, "//***@") : `libsql file in ${c.dataDir}`,
    redis: c.redisUrl ? c.redisUrl.replace(/\/\/[^@/]*@/, "//***@") : "not set (in-process limiter)",
    auth: c.authEnabled ? "on" : "off",
  };
}
