/**
 * Versioned schema migrations for both dialects. Each migration runs once, in
 * version order, inside a transaction, and is recorded in `schema_migrations`.
 * Never edit a released migration: append a new one with the next version.
 *
 * Time columns: libSQL stores milliseconds since the epoch (INTEGER); PostgreSQL uses
 * `timestamptz`. Costs are REAL / double precision.
 */

/** The SQL dialects the store speaks. */
export type Dialect = "libsql" | "postgres";

/** One schema change, as statements per dialect (one statement per entry). */
export interface Migration {
  version: number;
  name: string;
  sql: Record<Dialect, string[]>;
}

/** The bookkeeping table, created before anything else. */
export const SCHEMA_MIGRATIONS_DDL: Record<Dialect, string> = {
  libsql: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`,
  postgres: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
  )`,
};

/**
 * The key of the PostgreSQL transaction-level advisory lock that serialises
 * concurrent migrators (`pg_advisory_xact_lock(MIGRATION_LOCK_KEY)`).
 * An arbitrary constant: "llmgw" in ASCII.
 */
export const MIGRATION_LOCK_KEY = 0x6c6c6d6777;

/** All migrations, in ascending version order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "api_keys and usage_records",
    sql: {
      libsql: [
        `CREATE TABLE api_keys (
          id TEXT PRIMARY KEY,
          name TEXT NOT NULL,
          prefix TEXT NOT NULL,
          hash TEXT NOT NULL UNIQUE,
          created_at INTEGER NOT NULL,
          expires_at INTEGER,
          revoked_at INTEGER,
          models TEXT,
          rpm INTEGER,
          tpm INTEGER,
          concurrency INTEGER,
          budget_usd REAL,
          budget_period TEXT NOT NULL DEFAULT 'total',
          admin INTEGER NOT NULL DEFAULT 0,
          metadata TEXT
        )`,
        `CREATE INDEX api_keys_prefix_idx ON api_keys (prefix)`,
        `CREATE TABLE usage_records (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          request_id TEXT NOT NULL,
          key_id TEXT,
          model TEXT NOT NULL,
          provider TEXT NOT NULL,
          upstream_model TEXT NOT NULL,
          prompt_tokens INTEGER NOT NULL,
          completion_tokens INTEGER NOT NULL,
          total_tokens INTEGER NOT NULL,
          cost_usd REAL NOT NULL,
          latency_ms REAL NOT NULL,
          ttft_ms REAL,
          status INTEGER NOT NULL,
          streamed INTEGER NOT NULL,
          error_code TEXT,
          cancelled INTEGER NOT NULL,
          created_at INTEGER NOT NULL
        )`,
        `CREATE INDEX usage_records_key_time_idx ON usage_records (key_id, created_at)`,
        `CREATE INDEX usage_records_time_idx ON usage_records (created_at)`,
      ],
      postgres: [
        `CREATE TABLE api_keys (
          id TEXT PRIMARY KEY,
          name TEXT NOT NULL,
          prefix TEXT NOT NULL,
          hash TEXT NOT NULL UNIQUE,
          created_at TIMESTAMPTZ NOT NULL,
          expires_at TIMESTAMPTZ,
          revoked_at TIMESTAMPTZ,
          models JSONB,
          rpm INTEGER,
          tpm INTEGER,
          concurrency INTEGER,
          budget_usd DOUBLE PRECISION,
          budget_period TEXT NOT NULL DEFAULT 'total',
          admin BOOLEAN NOT NULL DEFAULT false,
          metadata JSONB
        )`,
        `CREATE INDEX api_keys_prefix_idx ON api_keys (prefix)`,
        `CREATE TABLE usage_records (
          id BIGSERIAL PRIMARY KEY,
          request_id TEXT NOT NULL,
          key_id TEXT,
          model TEXT NOT NULL,
          provider TEXT NOT NULL,
          upstream_model TEXT NOT NULL,
          prompt_tokens INTEGER NOT NULL,
          completion_tokens INTEGER NOT NULL,
          total_tokens INTEGER NOT NULL,
          cost_usd DOUBLE PRECISION NOT NULL,
          latency_ms DOUBLE PRECISION NOT NULL,
          ttft_ms DOUBLE PRECISION,
          status INTEGER NOT NULL,
          streamed BOOLEAN NOT NULL,
          error_code TEXT,
          cancelled BOOLEAN NOT NULL,
          created_at TIMESTAMPTZ NOT NULL
        )`,
        `CREATE INDEX usage_records_key_time_idx ON usage_records (key_id, created_at)`,
        `CREATE INDEX usage_records_time_idx ON usage_records (created_at)`,
      ],
    },
  },
];

/**
 * The migrations not yet in `applied`, in ascending version order.
 * Throws when the list itself is malformed (duplicate or unordered versions), or
 * when the database holds a version this build does not know (a newer gateway
 * migrated it; running older code against it would be unsafe).
 */
export function pendingMigrations(
  applied: Iterable<number>,
  migrations: readonly Migration[] = MIGRATIONS,
): Migration[] {
  let last = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.version) || m.version <= last) {
      throw new Error(`migrations must have ascending, unique versions (at ${m.version} "${m.name}")`);
    }
    last = m.version;
  }
  const done = new Set(applied);
  for (const v of done) {
    if (v > last) {
      throw new Error(
        `the database schema is at version ${v}, newer than this gateway knows (${last}); upgrade the gateway`,
      );
    }
  }
  return migrations.filter((m) => !done.has(m.version));
}
