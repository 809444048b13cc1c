/**
 * One suite of store tests, run against libSQL (temporary files) and PostgreSQL
 * (a fresh schema per test, dropped afterwards; skipped when PostgreSQL is down).
 */
import assert from "node:assert/strict";
import { createClient } from "@libsql/client";
import postgres from "postgres";
import { ConflictError } from "../../core/errors.ts";
import { generateApiKey, hashApiKey, keyPrefix } from "../../core/keys.ts";
import { MIGRATIONS } from "../../core/store/migrations.ts";
import { libsqlFilePath, normalizeLibsqlUrl } from "../../core/store/libsql.ts";
import { defaultDatabaseUrl, isPostgresUrl, openStore } from "../../core/store/open.ts";
import { NO_KEY_GROUP, type Store, type UsageRecord } from "../../core/store/store.ts";
import { ignoreWithout, POSTGRES_URL, serviceAvailable } from "../services.ts";

/** A fresh, empty database for one test: open stores on it, count migration rows, clean up. */
interface Fixture {
  /** What `openStore` gets, also handed to child processes. */
  url: string;
  schema?: string;
  open(opts?: { skipMigrations?: boolean }): Promise<Store>;
  migrationRows(): Promise<number>;
  cleanup(): Promise<void>;
}

interface Backend {
  name: string;
  ignore: boolean;
  fixture(): Promise<Fixture>;
}

const libsql: Backend = {
  name: "libsql",
  ignore: false,
  async fixture() {
    const dir = await Deno.makeTempDir({ prefix: "llmgw-store-" });
    // A sub-directory that does not exist yet: the store must create it.
    const url = `file:${dir}/nested/llmgw.db`;
    return {
      url,
      open: (opts) => openStore(url, opts),
      async migrationRows() {
        const c = createClient({ url });
        try {
          const rs = await c.execute("SELECT COUNT(*) AS n FROM schema_migrations");
          return Number(rs.rows[0]?.["n"]);
        } finally {
          c.close();
        }
      },
      cleanup: () => Deno.remove(dir, { recursive: true }),
    };
  },
};

const pg: Backend = {
  name: "postgres",
  ignore: ignoreWithout("postgres"),
  async fixture() {
    if (!(await serviceAvailable("postgres"))) throw new Error("postgres unavailable");
    const schema = `llmgw_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const admin = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
    return {
      url: POSTGRES_URL,
      schema,
      open: (opts) => openStore(POSTGRES_URL, { schema, ...opts }),
      async migrationRows() {
        const rows = await admin`SELECT COUNT(*)::int AS n FROM ${admin(schema)}.schema_migrations`;
        return Number(rows[0]?.n);
      },
      async cleanup() {
        try {
          await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`;
        } finally {
          await admin.end({ timeout: 5 });
        }
      },
    };
  },
};

/** Runs `fn` with a migrated store on a fresh database, closing and cleaning up after. */
async function withStore(b: Backend, fn: (store: Store, fx: Fixture) => Promise<void>): Promise<void> {
  const fx = await b.fixture();
  try {
    const store = await fx.open();
    try {
      await fn(store, fx);
    } finally {
      await store.close();
    }
  } finally {
    await fx.cleanup();
  }
}

const OPEN_MODULE = new URL("../../core/store/open.ts", import.meta.url).href;
const CONFIG = new URL("../../deno.json", import.meta.url);

/**
 * Starts `n` separate processes that open the fixture's database and then all call
 * `migrate()` at the same instant (a shared start time well after their start-up).
 */
async function migrateInProcesses(fx: Fixture, n: number): Promise<void> {
  const startAt = Date.now() + 2000;
  const code = `
    const { openStore } = await import(${JSON.stringify(OPEN_MODULE)});
    const opts = { schema: ${JSON.stringify(fx.schema)}, skipMigrations: true };
    const store = await openStore(${JSON.stringify(fx.url)}, opts);
    await new Promise((r) => setTimeout(r, Math.max(0, ${startAt} - Date.now())));
    try { await store.migrate(); } finally { await store.close(); }`;
  const runs = Array.from({ length: n }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", CONFIG.pathname, code],
      cwd: new URL("../..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output());
  for (const out of await Promise.all(runs)) {
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  }
}

const T0 = Date.UTC(2025, 0, 10, 12, 0, 0); // 2025-01-10T12:00:00Z

function usage(i: number, over: Partial<UsageRecord> = {}): UsageRecord {
  return {
    requestId: `req_${i}`,
    keyId: "key_a",
    model: "gpt-4o-mini",
    provider: "openai",
    upstreamModel: "gpt-4o-mini-2024-07-18",
    promptTokens: 10,
    completionTokens: 5,
    totalTokens: 15,
    costUsd: 0.000123,
    latencyMs: 42.5,
    ttftMs: 12,
    status: 200,
    streamed: false,
    errorCode: null,
    cancelled: false,
    createdAt: new Date(T0 + i),
    ...over,
  };
}

async function newKey(store: Store, name: string, extra: Record<string, unknown> = {}) {
  const raw = generateApiKey();
  const rec = await store.createKey({ name, hash: await hashApiKey(raw), prefix: keyPrefix(raw), ...extra });
  return { raw, rec };
}

for (const b of [libsql, pg]) {
  const test = (name: string, fn: (store: Store, fx: Fixture) => Promise<void>) =>
    Deno.test({ name: `${b.name} store: ${name}`, ignore: b.ignore, fn: () => withStore(b, fn) });

  test("migrations are idempotent (run twice, reopen)", async (store, fx) => {
    assert.equal(store.kind, b.name);
    assert.equal(await fx.migrationRows(), MIGRATIONS.length);
    await store.migrate();
    await store.migrate();
    const again = await fx.open();
    await again.close();
    assert.equal(await fx.migrationRows(), MIGRATIONS.length);
    assert.equal(await store.countKeys(), 0);
  });

  Deno.test({
    name: `${b.name} store: processes starting at once on a fresh database migrate it once`,
    ignore: b.ignore,
    async fn() {
      const fx = await b.fixture();
      try {
        await migrateInProcesses(fx, 3);
        assert.equal(await fx.migrationRows(), MIGRATIONS.length);
      } finally {
        await fx.cleanup();
      }
    },
  });

  if (b.name === "postgres") {
    // libSQL file locks are taken synchronously on the JS thread, so racing write
    // transactions in one process would wait on each other; the child-process test covers it.
    Deno.test({
      name: `${b.name} store: concurrent in-process migrations on a fresh database apply each once`,
      ignore: b.ignore,
      async fn() {
        const fx = await b.fixture();
        try {
          const opts = { skipMigrations: true };
          const stores = await Promise.all([fx.open(opts), fx.open(opts), fx.open(opts), fx.open(opts)]);
          try {
            await Promise.all(stores.map((s) => s.migrate()));
          } finally {
            await Promise.all(stores.map((s) => s.close()));
          }
          assert.equal(await fx.migrationRows(), MIGRATIONS.length);
        } finally {
          await fx.cleanup();
        }
      },
    });
  }

  test("creates, gets, lists, updates and revokes keys", async (store) => {
    const expires = new Date(Date.UTC(2030, 5, 1, 8, 30, 15, 123));
    const { raw, rec } = await newKey(store, "alpha", {
      expiresAt: expires,
      models: ["gpt-4o", "claude-*"],
      rpm: 60,
      tpm: 100_000,
      concurrency: 4,
      budgetUsd: 12.345678,
      budgetPeriod: "month",
      admin: true,
      metadata: { team: "ml", nested: { a: [1, 2] } },
    });
    assert.match(rec.id, /^key_[0-9A-Za-z]{20}$/);
    assert.equal(rec.prefix, keyPrefix(raw));
    assert.notEqual(rec.hash, raw);
    assert.equal(rec.revokedAt, null);

    const got = await store.getKey(rec.id);
    assert.deepEqual(got, rec);
    assert.equal(got?.expiresAt?.getTime(), expires.getTime());
    assert.deepEqual(got?.models, ["gpt-4o", "claude-*"]);
    assert.deepEqual(got?.metadata, { team: "ml", nested: { a: [1, 2] } });
    assert.deepEqual(await store.getKey(rec.prefix), rec);
    assert.deepEqual(await store.getKeyByHash(await hashApiKey(raw)), rec);
    assert.equal(await store.getKeyByHash(await hashApiKey(generateApiKey())), null);
    assert.equal(await store.getKey("key_doesnotexist"), null);

    const { rec: beta } = await newKey(store, "beta");
    assert.equal(beta.expiresAt, null);
    assert.equal(beta.models, null);
    assert.equal(beta.budgetPeriod, "total");
    assert.equal(beta.admin, false);
    assert.equal(beta.metadata, null);
    assert.deepEqual(await store.getKey(beta.id), beta);

    assert.deepEqual((await store.listKeys()).map((k) => k.name).sort(), ["alpha", "beta"]);
    assert.equal(await store.countKeys(), 2);

    const updated = await store.updateKey(rec.id, {
      name: "alpha2",
      models: null,
      rpm: null,
      budgetUsd: 1.5,
      budgetPeriod: "day",
      expiresAt: null,
      admin: false,
    });
    assert.ok(updated);
    assert.equal(updated.name, "alpha2");
    assert.equal(updated.models, null);
    assert.equal(updated.rpm, null);
    assert.equal(updated.tpm, 100_000); // untouched
    assert.equal(updated.budgetUsd, 1.5);
    assert.equal(updated.budgetPeriod, "day");
    assert.equal(updated.expiresAt, null);
    assert.equal(updated.admin, false);
    assert.deepEqual(updated.metadata, { team: "ml", nested: { a: [1, 2] } });
    assert.deepEqual(await store.updateKey(rec.id, {}), updated);
    assert.equal(await store.updateKey("key_nope", { name: "x" }), null);

    const revoked = await store.revokeKey(beta.prefix);
    assert.ok(revoked?.revokedAt instanceof Date);
    const again = await store.revokeKey(beta.id);
    assert.equal(again?.revokedAt?.getTime(), revoked.revokedAt.getTime()); // first revocation kept
    assert.equal(await store.revokeKey("key_nope"), null);
    assert.deepEqual((await store.listKeys()).map((k) => k.id), [rec.id]);
    assert.deepEqual(
      (await store.listKeys({ includeRevoked: true })).map((k) => k.id).sort(),
      [rec.id, beta.id].sort(),
    );
    assert.equal(await store.countKeys(), 2);
  });

  test("an ambiguous prefix is a conflict", async (store) => {
    const hashes = [await hashApiKey("a"), await hashApiKey("b")];
    await store.createKey({ name: "one", hash: hashes[0]!, prefix: "sk-llmgw-SAME" });
    await store.createKey({ name: "two", hash: hashes[1]!, prefix: "sk-llmgw-SAME" });
    await assert.rejects(() => store.getKey("sk-llmgw-SAME"), ConflictError);
  });

  test("duplicate hashes are rejected", async (store) => {
    const hash = await hashApiKey("same");
    await store.createKey({ name: "one", hash, prefix: "sk-llmgw-AAAA" });
    await assert.rejects(() => store.createKey({ name: "two", hash, prefix: "sk-llmgw-BBBB" }));
  });

  test("inserts N usage records as N rows, with every field round-tripping", async (store) => {
    const n = 2345; // more than one INSERT chunk on both dialects
    await store.insertUsage(Array.from({ length: n }, (_, i) => usage(i)));
    await store.insertUsage([]);
    assert.equal(await store.countUsage(), n);
    assert.equal(await store.countUsage({ keyId: "key_a" }), n);
    assert.equal(await store.countUsage({ keyId: "key_b" }), 0);

    const special = usage(n, {
      keyId: null,
      requestId: "req_special",
      ttftMs: null,
      status: 499,
      streamed: true,
      cancelled: true,
      errorCode: "client_closed",
      costUsd: 1.0000000001,
      createdAt: new Date(T0 + 86_400_000 + 7),
    });
    await store.insertUsage([special]);
    const [newest, second] = await store.listUsage({ limit: 2 });
    assert.deepEqual(newest, special);
    assert.deepEqual(second, usage(n - 1));
    assert.equal((await store.listUsage()).length, 100);
    assert.equal((await store.listUsage({ keyId: "key_a", limit: 5000 })).length, n);
  });

  test("summarises usage by model, key and day", async (store) => {
    const day = 86_400_000;
    await store.insertUsage([
      usage(1, { model: "a", keyId: "key_1", costUsd: 0.1 }),
      usage(2, { model: "a", keyId: "key_2", costUsd: 0.2, status: 502, errorCode: "upstream_error" }),
      usage(3, { model: "b", keyId: "key_1", costUsd: 0.3, createdAt: new Date(T0 + day) }),
      usage(4, { model: "b", keyId: null, costUsd: 0.4, createdAt: new Date(T0 + 2 * day) }),
    ]);
    const byModel = await store.usageSummary({ by: "model" });
    assert.deepEqual(byModel.map((g) => [g.group, g.requests, g.errors, g.totalTokens]), [
      ["a", 2, 1, 30],
      ["b", 2, 0, 30],
    ]);
    assert.ok(Math.abs(byModel[0]!.costUsd - 0.3) < 1e-12);
    assert.equal(byModel[0]!.promptTokens, 20);
    assert.equal(byModel[0]!.completionTokens, 10);

    const byKey = await store.usageSummary({ by: "key" });
    assert.deepEqual(
      byKey.map((g) => [g.group, g.requests]).sort(),
      [
        [NO_KEY_GROUP, 1],
        ["key_1", 2],
        ["key_2", 1],
      ].sort(),
    );

    const byDay = await store.usageSummary({ by: "day" });
    assert.deepEqual(byDay.map((g) => [g.group, g.requests]), [
      ["2025-01-10", 2],
      ["2025-01-11", 1],
      ["2025-01-12", 1],
    ]);

    const filtered = await store.usageSummary({
      by: "day",
      keyId: "key_1",
      since: new Date(T0 + day),
      until: new Date(T0 + 2 * day),
    });
    assert.deepEqual(filtered.map((g) => [g.group, g.requests]), [["2025-01-11", 1]]);
    assert.deepEqual(await store.usageSummary({ by: "model", keyId: "key_none" }), []);
  });

  test("sums spend since a date", async (store) => {
    await store.insertUsage([
      usage(1, { costUsd: 0.25, createdAt: new Date(T0) }),
      usage(2, { costUsd: 0.5, createdAt: new Date(T0 + 1000) }),
      usage(3, { costUsd: 1.125, createdAt: new Date(T0 + 2000) }),
      usage(4, { costUsd: 100, keyId: "key_other", createdAt: new Date(T0 + 2000) }),
    ]);
    assert.equal(await store.spendSince("key_a", null), 1.875);
    assert.equal(await store.spendSince("key_a", new Date(T0 + 1000)), 1.625); // inclusive
    assert.equal(await store.spendSince("key_a", new Date(T0 + 5000)), 0);
    assert.equal(await store.spendSince("key_unknown", null), 0);
  });
}

Deno.test("openStore defaults to <dataDir>/llmgw.db in WAL mode", async () => {
  const dir = await Deno.makeTempDir({ prefix: "llmgw-open-" });
  try {
    const store = await openStore(undefined, { dataDir: `${dir}/data/` });
    try {
      assert.equal(store.kind, "libsql");
      assert.equal(await store.countKeys(), 0);
    } finally {
      await store.close();
    }
    assert.ok((await Deno.stat(`${dir}/data/llmgw.db`)).isFile);
    const c = createClient({ url: `file:${dir}/data/llmgw.db` });
    try {
      const rs = await c.execute("PRAGMA journal_mode");
      assert.equal(String(rs.rows[0]?.[0]).toLowerCase(), "wal");
    } finally {
      c.close();
    }
    // A bare path works as well.
    const bare = await openStore(`${dir}/other/x.db`);
    await bare.close();
    assert.ok((await Deno.stat(`${dir}/other/x.db`)).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store URLs are routed by scheme", () => {
  assert.equal(isPostgresUrl("postgres://u@h/db"), true);
  assert.equal(isPostgresUrl("postgresql://u@h/db"), true);
  assert.equal(isPostgresUrl("libsql://db.turso.io"), false);
  assert.equal(isPostgresUrl("file:./data/llmgw.db"), false);
  assert.equal(defaultDatabaseUrl(), "file:./data/llmgw.db");
  assert.equal(defaultDatabaseUrl("/var/lib/llmgw/"), "file:/var/lib/llmgw/llmgw.db");
  assert.equal(libsqlFilePath("file:./data/llmgw.db"), "./data/llmgw.db");
  assert.equal(libsqlFilePath("file:///abs/x.db"), "/abs/x.db");
  assert.equal(libsqlFilePath("file:/abs/x.db?mode=rwc"), "/abs/x.db");
  assert.equal(libsqlFilePath("file::memory:"), null);
  assert.equal(libsqlFilePath("libsql://db.example.com"), null);
  assert.equal(libsqlFilePath("http://127.0.0.1:8080"), null);
  assert.equal(normalizeLibsqlUrl("./x.db"), "file:./x.db");
  assert.equal(normalizeLibsqlUrl("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
});
