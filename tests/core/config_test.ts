/**
 * Unit tests for configuration loading (core/config.ts): defaults, environment,
 * YAML/JSON files (temporary files), precedence, errors and the secret-free summary.
 */
import assert from "node:assert/strict";
import {
  buildConfig,
  type Config,
  ConfigError,
  type ConfigFile,
  describeConfig,
  loadConfig,
  readConfigFile,
} from "../../core/config.ts";

async function withTempFile<T>(suffix: string, text: string, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ prefix: "llmgw-config-test-", suffix });
  try {
    await Deno.writeTextFile(path, text);
    return await fn(path);
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

async function configError(p: Promise<unknown> | (() => unknown)): Promise<ConfigError> {
  try {
    if (typeof p === "function") p();
    else await p;
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    assert.equal(err.name, "ConfigError");
    return err;
  }
  assert.fail("expected a ConfigError");
}

function provider(c: Config, name: string) {
  const p = c.providers.find((x) => x.name === name);
  assert.ok(p, `provider ${name} in ${c.providers.map((x) => x.name)}`);
  return p;
}

Deno.test("defaults: listen 0.0.0.0:9000, Ollama on localhost, OpenRouter without a key", async () => {
  const c = await loadConfig({ env: {} });
  assert.equal(c.port, 9000);
  assert.equal(c.host, "0.0.0.0");
  assert.deepEqual(c.providers.map((p) => [p.name, p.type]), [["ollama", "ollama"], [
    "openrouter",
    "openrouter",
  ]]);
  assert.equal(provider(c, "ollama").baseUrl, "http://localhost:11434");
  const or = provider(c, "openrouter");
  assert.equal(or.baseUrl, "https://openrouter.ai/api/v1");
  assert.equal(or.apiKey, undefined, "no key → the provider is unconfigured");
  assert.equal(or.title, "llmgw");
  assert.equal(c.defaultModel, undefined);
  assert.deepEqual(c.aliases, {});
  assert.deepEqual(c.pricing, {});
  assert.equal(c.upstreamTimeoutMs, 120_000);
  assert.equal(c.streamIdleTimeoutMs, 300_000);
  assert.equal(c.modelCacheTtlMs, 30_000);
  assert.equal(c.maxBodyBytes, 20 * 1024 * 1024);
  assert.deepEqual(c.corsOrigins, ["*"]);
  assert.equal(c.dataDir, "./data");
  assert.equal(c.authEnabled, true);
  assert.equal(c.logLevel, "info");
  assert.equal(c.keyCacheTtlMs, 5_000);
  assert.deepEqual(c.globalLimits, { rpm: undefined, tpm: undefined, concurrency: undefined });
  for (const p of c.providers) assert.equal(p.timeoutMs, 120_000);
  assert.ok(Object.isFrozen(c));
  // loadConfig() with nothing at all behaves the same.
  assert.equal((await loadConfig()).port, 9000);
});

Deno.test("environment overrides the defaults", () => {
  const c = buildConfig({}, {
    LLMGW_PORT: "8080",
    LLMGW_HOST: "127.0.0.1",
    OLLAMA_BASE_URL: "http://gpu-box:11434",
    OPENROUTER_API_KEY: "sk-or-v1-secret",
    OPENROUTER_BASE_URL: "http://localhost:9999/api/v1",
    LLMGW_OPENROUTER_REFERER: "https://example.com",
    LLMGW_OPENROUTER_TITLE: "My App",
    LLMGW_DEFAULT_MODEL: "llama3.2",
    LLMGW_UPSTREAM_TIMEOUT_MS: "5000",
    LLMGW_STREAM_IDLE_TIMEOUT_MS: "7000",
    LLMGW_MODEL_CACHE_TTL_MS: "1000",
    LLMGW_MAX_BODY_BYTES: "1024",
    LLMGW_CORS_ORIGINS: "https://a.example, https://b.example,,",
    LLMGW_DATA_DIR: "/var/lib/llmgw",
    LLMGW_DATABASE_URL: "postgres://u:p@db/llmgw",
    LLMGW_REDIS_URL: "redis://cache:6379",
    LLMGW_AUTH: "off",
    LLMGW_ADMIN_KEY: "sk-llmgw-admin",
    LLMGW_ANONYMOUS_KEY: "key_anon",
    LLMGW_KEY_CACHE_TTL_MS: "0",
    LLMGW_GLOBAL_RPM: "60",
    LLMGW_GLOBAL_TPM: "100000",
    LLMGW_GLOBAL_CONCURRENCY: "4",
    LLMGW_LOG_LEVEL: "debug",
  });
  assert.equal(c.port, 8080);
  assert.equal(c.host, "127.0.0.1");
  assert.equal(provider(c, "ollama").baseUrl, "http://gpu-box:11434");
  const or = provider(c, "openrouter");
  assert.equal(or.apiKey, "sk-or-v1-secret");
  assert.equal(or.baseUrl, "http://localhost:9999/api/v1");
  assert.equal(or.referer, "https://example.com");
  assert.equal(or.title, "My App");
  assert.equal(c.defaultModel, "llama3.2");
  assert.equal(c.upstreamTimeoutMs, 5000);
  for (const p of c.providers) assert.equal(p.timeoutMs, 5000);
  assert.equal(c.streamIdleTimeoutMs, 7000);
  assert.equal(c.modelCacheTtlMs, 1000);
  assert.equal(c.maxBodyBytes, 1024);
  assert.deepEqual(c.corsOrigins, ["https://a.example", "https://b.example"]);
  assert.equal(c.dataDir, "/var/lib/llmgw");
  assert.equal(c.databaseUrl, "postgres://u:p@db/llmgw");
  assert.equal(c.redisUrl, "redis://cache:6379");
  assert.equal(c.authEnabled, false);
  assert.equal(c.adminKey, "sk-llmgw-admin");
  assert.equal(c.anonymousKey, "key_anon");
  assert.equal(c.keyCacheTtlMs, 0);
  assert.deepEqual(c.globalLimits, { rpm: 60, tpm: 100000, concurrency: 4 });
  assert.equal(c.logLevel, "debug");
});

Deno.test("environment: empty strings count as unset", () => {
  const c = buildConfig({}, {
    LLMGW_PORT: "",
    OPENROUTER_API_KEY: "",
    OLLAMA_BASE_URL: "",
    LLMGW_DEFAULT_MODEL: "",
    LLMGW_AUTH: "",
    LLMGW_ADMIN_KEY: "",
  });
  assert.equal(c.port, 9000);
  assert.equal(provider(c, "openrouter").apiKey, undefined);
  assert.equal(provider(c, "ollama").baseUrl, "http://localhost:11434");
  assert.equal(c.defaultModel, undefined);
  assert.equal(c.authEnabled, true);
  assert.equal(c.adminKey, undefined);
});

Deno.test("environment: booleans accept the usual spellings", () => {
  for (const v of ["1", "true", "TRUE", "yes", "on"]) {
    assert.equal(buildConfig({}, { LLMGW_AUTH: v }).authEnabled, true);
  }
  for (const v of ["0", "false", "No", "off"]) {
    assert.equal(buildConfig({}, { LLMGW_AUTH: v }).authEnabled, false);
  }
});

Deno.test("environment: bad integers and booleans are clear ConfigErrors", async () => {
  for (
    const [name, value] of [["LLMGW_PORT", "abc"], ["LLMGW_PORT", "-1"], ["LLMGW_PORT", "80.5"], [
      "LLMGW_GLOBAL_RPM",
      "lots",
    ], ["LLMGW_UPSTREAM_TIMEOUT_MS", "5s"]]
  ) {
    const err = await configError(() => buildConfig({}, { [name!]: value }));
    const max = name === "LLMGW_PORT" ? 65535 : Number.MAX_SAFE_INTEGER;
    assert.equal(err.message, `${name} must be an integer from 0 to ${max}, got '${value}'`);
  }
  // Out-of-range ports, blank-but-not-empty values and unknown log levels are refused too.
  await configError(() => buildConfig({}, { LLMGW_PORT: "70000" }));
  assert.equal(buildConfig({}, { LLMGW_PORT: " " }).port, 9000, "whitespace counts as unset");
  const lvl = await configError(() => buildConfig({}, { LLMGW_LOG_LEVEL: "loud" }));
  assert.match(lvl.message, /LLMGW_LOG_LEVEL must be one of debug, info, warn, error/);
  const err = await configError(() => buildConfig({}, { LLMGW_AUTH: "maybe" }));
  assert.equal(err.message, "LLMGW_AUTH must be true or false, got 'maybe'");
  // loadConfig surfaces the same error.
  await configError(loadConfig({ env: { LLMGW_PORT: "nine thousand" } }));
});

const YAML_CONFIG = `
server:
  host: 127.0.0.1
  port: 9100
  cors_origins: [https://app.example]
default_model: fast
aliases:
  fast: ollama/llama3.2
  smart: openrouter/openai/gpt-4o
providers:
  - name: local
    type: ollama
    base_url: http://ollama.internal:11434
  - name: vllm
    type: openai
    base_url: http://vllm.internal:8000/v1
    api_key: sk-vllm-from-file
    headers:
      X-Team: research
    timeout_ms: 3000
upstream_timeout_ms: 60000
pricing:
  llama3.2:
    prompt: 0.1
    completion: 0.2
auth:
  enabled: false
  anonymous_key: key_anon
global_limits:
  rpm: 100
log_level: warn
`;

Deno.test("YAML file: providers, aliases, default model, pricing", async () => {
  await withTempFile(".yaml", YAML_CONFIG, async (path) => {
    const c = await loadConfig({ env: {}, file: path });
    assert.equal(c.host, "127.0.0.1");
    assert.equal(c.port, 9100);
    assert.deepEqual(c.corsOrigins, ["https://app.example"]);
    assert.equal(c.defaultModel, "fast");
    assert.deepEqual(c.aliases, { fast: "ollama/llama3.2", smart: "openrouter/openai/gpt-4o" });
    // A file Ollama provider replaces the default one; OpenRouter is still added.
    assert.deepEqual(c.providers.map((p) => [p.name, p.type]), [
      ["local", "ollama"],
      ["vllm", "openai"],
      ["openrouter", "openrouter"],
    ]);
    const local = provider(c, "local");
    assert.equal(local.baseUrl, "http://ollama.internal:11434");
    assert.equal(local.timeoutMs, 60000);
    const vllm = provider(c, "vllm");
    assert.equal(vllm.apiKey, "sk-vllm-from-file");
    assert.deepEqual(vllm.headers, { "X-Team": "research" });
    assert.equal(vllm.timeoutMs, 3000);
    assert.deepEqual(c.pricing, { "llama3.2": { prompt: 0.1, completion: 0.2 } });
    assert.equal(c.authEnabled, false);
    assert.equal(c.anonymousKey, "key_anon");
    assert.deepEqual(c.globalLimits, { rpm: 100, tpm: undefined, concurrency: undefined });
    assert.equal(c.logLevel, "warn");
    // LLMGW_CONFIG names the file when no path is given.
    assert.equal((await loadConfig({ env: { LLMGW_CONFIG: path } })).port, 9100);
  });
});

Deno.test("JSON file: same schema", async () => {
  const file: ConfigFile = {
    server: { port: 9200 },
    default_model: "openrouter/openai/gpt-4o-mini",
    providers: [{ name: "openrouter", type: "openrouter", api_key: "sk-or-file" }],
    pricing: { "openai/gpt-4o-mini": { prompt: 0.15, completion: 0.6 } },
  };
  await withTempFile(".json", JSON.stringify(file), async (path) => {
    const c = await loadConfig({ env: {}, file: path });
    assert.equal(c.port, 9200);
    assert.equal(c.defaultModel, "openrouter/openai/gpt-4o-mini");
    assert.deepEqual(c.providers.map((p) => p.name), ["ollama", "openrouter"]);
    const or = provider(c, "openrouter");
    assert.equal(or.apiKey, "sk-or-file");
    assert.equal(or.baseUrl, "https://openrouter.ai/api/v1");
    assert.deepEqual(c.pricing["openai/gpt-4o-mini"], { prompt: 0.15, completion: 0.6 });
  });
  // An empty YAML file is an empty config.
  await withTempFile(".yml", "", async (path) => {
    assert.equal((await loadConfig({ env: {}, file: path })).port, 9000);
  });
});

Deno.test("precedence: overrides > environment > file > defaults", async () => {
  await withTempFile(".yaml", YAML_CONFIG, async (path) => {
    const env = { LLMGW_PORT: "9300", LLMGW_HOST: "10.0.0.1", LLMGW_DEFAULT_MODEL: "smart", LLMGW_AUTH: "1" };
    const c = await loadConfig({ env, file: path });
    assert.equal(c.port, 9300);
    assert.equal(c.host, "10.0.0.1");
    assert.equal(c.defaultModel, "smart");
    assert.equal(c.authEnabled, true);
    assert.equal(c.logLevel, "warn", "the file still applies where env is silent");
    const o = await loadConfig({ env, file: path, overrides: { port: 9400, host: "::1" } });
    assert.equal(o.port, 9400);
    assert.equal(o.host, "::1");
    // Port 0 (a random port) is a valid override.
    assert.equal(buildConfig({}, { LLMGW_PORT: "9300" }, { port: 0 }).port, 0);
  });
  // Environment timeout beats the file's.
  const c = buildConfig({ upstream_timeout_ms: 1000 }, { LLMGW_UPSTREAM_TIMEOUT_MS: "2000" });
  assert.equal(c.upstreamTimeoutMs, 2000);
});

Deno.test("OPENROUTER_API_KEY reaches a file-declared OpenRouter provider without a key", () => {
  const c = buildConfig(
    { providers: [{ name: "or", type: "openrouter" }] },
    { OPENROUTER_API_KEY: "sk-or-env" },
  );
  assert.deepEqual(c.providers.map((p) => p.name), ["ollama", "or"]);
  assert.equal(provider(c, "or").apiKey, "sk-or-env");
  // The file's key wins over the generic env var.
  const f = buildConfig(
    { providers: [{ name: "or", type: "openrouter", api_key: "sk-or-file" }] },
    { OPENROUTER_API_KEY: "sk-or-env" },
  );
  assert.equal(provider(f, "or").apiKey, "sk-or-file");
});

Deno.test("api_key_env names the variable holding the key (preferred over api_key)", () => {
  const file: ConfigFile = {
    providers: [
      { name: "vllm", type: "openai", base_url: "http://vllm:8000/v1", api_key_env: "VLLM_KEY" },
      {
        name: "lmstudio",
        type: "openai",
        base_url: "http://lms:1234/v1",
        api_key_env: "LMS_KEY",
        api_key: "sk-fallback",
      },
      { name: "or2", type: "openrouter", api_key_env: "OR2_KEY" },
    ],
  };
  const c = buildConfig(file, {
    VLLM_KEY: "sk-vllm-env",
    OR2_KEY: "sk-or2",
    OPENROUTER_API_KEY: "sk-or-generic",
  });
  assert.equal(provider(c, "vllm").apiKey, "sk-vllm-env");
  assert.equal(provider(c, "lmstudio").apiKey, "sk-fallback", "unset variable → api_key");
  assert.equal(provider(c, "or2").apiKey, "sk-or2");
  const unset = buildConfig(file, {});
  assert.equal(provider(unset, "vllm").apiKey, undefined);
});

Deno.test("file errors: unknown keys, bad types, bad enum values name the path", async () => {
  const cases: [string, RegExp][] = [
    ["colour: blue\n", /\(root\): Unrecognized key: "colour"/],
    ["server:\n  prot: 9000\n", /server: Unrecognized key: "prot"/],
    ["server:\n  port: nine\n", /server\.port: .*expected number/],
    ["server:\n  port: 70000\n", /server\.port:/],
    ["providers:\n  - name: x\n    type: grpc\n", /providers\.0\.type:/],
    ["providers:\n  - name: x\n    type: openai\n    base_url: not a url\n", /providers\.0\.base_url:/],
    ["providers:\n  - name: 'bad name!'\n    type: ollama\n", /providers\.0\.name: letters, digits/],
    [
      "providers:\n  - name: x\n    type: ollama\n    apikey: k\n",
      /providers\.0: Unrecognized key: "apikey"/,
    ],
    ["pricing:\n  m:\n    prompt: -1\n    completion: 1\n", /pricing\.m\.prompt:/],
    ["log_level: loud\n", /log_level:/],
    ["aliases: [a, b]\n", /aliases:/],
  ];
  for (const [yaml, re] of cases) {
    await withTempFile(".yaml", yaml, async (path) => {
      const err = await configError(loadConfig({ env: {}, file: path }));
      assert.ok(err.message.startsWith(`Invalid configuration in ${path}:\n  - `), err.message);
      assert.match(err.message, re);
    });
  }
});

Deno.test("file errors: unreadable file, invalid YAML and invalid JSON", async () => {
  const missing = await configError(readConfigFile("/nonexistent/llmgw.yaml"));
  assert.match(missing.message, /^Cannot read config file \/nonexistent\/llmgw\.yaml: /);
  await withTempFile(".yaml", "server: [unclosed\n", async (path) => {
    const err = await configError(readConfigFile(path));
    assert.match(err.message, new RegExp(`^Config file ${path} is not valid YAML: `));
    assert.ok(!err.message.includes("\n"), "one line");
  });
  await withTempFile(".JSON", '{"server": {', async (path) => {
    const err = await configError(readConfigFile(path));
    assert.match(err.message, new RegExp(`^Config file ${path} is not valid JSON: `));
  });
});

Deno.test("semantic errors: duplicate provider names, openai without base_url, self alias", async () => {
  const dup = await configError(() =>
    buildConfig({
      providers: [
        { name: "a", type: "openai", base_url: "http://x/v1" },
        { name: "a", type: "ollama" },
      ],
    }, {})
  );
  assert.equal(dup.message, "Invalid configuration: provider name 'a' is used twice");
  const noUrl = await configError(() => buildConfig({ providers: [{ name: "vllm", type: "openai" }] }, {}));
  assert.equal(noUrl.message, "Invalid configuration: provider 'vllm' (type openai) needs base_url");
  const self = await configError(() => buildConfig({ aliases: { a: "a" } }, {}));
  assert.equal(self.message, "Invalid configuration: alias 'a' points to itself");
  // Through a file as well.
  await withTempFile(".yaml", "providers:\n  - name: v\n    type: openai\n", async (path) => {
    await configError(loadConfig({ env: {}, file: path }));
  });
});

Deno.test("describeConfig never contains a key value", () => {
  const secrets = [
    "sk-or-v1-abcdef0123456789",
    "sk-vllm-s3cret-value",
    "sk-llmgw-admin-key-xyz",
    "dbpassw0rd",
    "r3dis",
  ];
  const c = buildConfig({
    providers: [{
      name: "vllm",
      type: "openai",
      base_url: "http://vllm:8000/v1",
      api_key: secrets[1],
      headers: { authorization: "Bearer sk-vllm-s3cret-value" },
    }],
  }, {
    OPENROUTER_API_KEY: secrets[0],
    LLMGW_ADMIN_KEY: secrets[2],
    LLMGW_DATABASE_URL: `postgres://llmgw:${secrets[3]}@db:5432/llmgw`,
    LLMGW_REDIS_URL: `redis://:${secrets[4]}@cache:6379/0`,
  });
  const d = describeConfig(c);
  const text = JSON.stringify(d);
  for (const s of secrets) assert.ok(!text.includes(s), `describeConfig leaks ${s}: ${text}`);
  assert.equal(d.listen, "0.0.0.0:9000");
  assert.equal(d.database, "postgres://***@db:5432/llmgw");
  assert.equal(d.redis, "redis://***@cache:6379/0");
  assert.equal(d.auth, "on");
  assert.deepEqual(d.providers, [
    { name: "ollama", type: "ollama", baseUrl: "http://localhost:11434", apiKey: "not set" },
    { name: "vllm", type: "openai", baseUrl: "http://vllm:8000/v1", apiKey: "set" },
    { name: "openrouter", type: "openrouter", baseUrl: "https://openrouter.ai/api/v1", apiKey: "set" },
  ]);
  const plain = describeConfig(buildConfig({}, { LLMGW_DATA_DIR: "/d" }));
  assert.equal(plain.database, "libsql file in /d");
  assert.equal(plain.redis, "not set (in-process limiter)");
  assert.equal(plain.defaultModel, null);
});

Deno.test("a file provider named like a built-in one replaces it (no duplicate names)", () => {
  const c = buildConfig({
    providers: [
      { name: "ollama", type: "openai", base_url: "http://127.0.0.1:1/v1" },
      { name: "openrouter", type: "openai", base_url: "http://127.0.0.1:2/v1" },
    ],
  }, {});
  assert.deepEqual(c.providers.map((p) => `${p.name}:${p.type}`), ["ollama:openai", "openrouter:openai"]);
});
