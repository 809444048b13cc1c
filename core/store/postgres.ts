/**
 * Store on PostgreSQL via the `postgres` npm package. Migrations take a
 * transaction-level advisory lock, so several gateway processes may start at once.
 * An optional `schema` puts every table in that schema (created on migrate) — used
 * by tests for isolation and by deployments sharing a database.
 */
import postgres from "postgres";
import { ConflictError } from "../errors.ts";
import { generateKeyId } from "../keys.ts";
import { MIGRATION_LOCK_KEY, pendingMigrations, SCHEMA_MIGRATIONS_DDL } from "./migrations.ts";
import {
  clampLimit,
  type KeyPatch,
  type KeyRecord,
  type NewKey,
  NO_KEY_GROUP,
  type Store,
  toBudgetPeriod,
  type UsageAggregate,
  type UsageQuery,
  type UsageRecord,
} from "./store.ts";

/** Options for {@link PostgresStore.open}. */
export interface PostgresOptions {
  /** Schema for all tables (a lowercase identifier); created by `migrate`. Default: the server's search_path. */
  schema?: string;
  /** Pool size (default 10). */
  max?: number;
}

/** Rows per INSERT statement (16 columns → 16 000 parameters, under PostgreSQL's 65 535). */
const INSERT_CHUNK = 1000;

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

type Sql = postgres.Sql;
type PgRow = Record<string, unknown>;

const num = (v: unknown): number => (typeof v === "number" ? v : v == null ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v == null ? null : Number(v));
const dateOrNull = (
  v: unknown,
): Date | null => (v == null ? null : v instanceof Date ? v : new Date(String(v)));
const str = (v: unknown): string => (v == null ? "" : String(v));

function toKey(r: PgRow): KeyRecord {
  return {
    id: str(r.id),
    name: str(r.name),
    prefix: str(r.prefix),
    hash: str(r.hash),
    createdAt: dateOrNull(r.created_at) ?? new Date(0),
    expiresAt: dateOrNull(r.expires_at),
    revokedAt: dateOrNull(r.revoked_at),
    models: (r.models ?? null) as string[] | null,
    rpm: numOrNull(r.rpm),
    tpm: numOrNull(r.tpm),
    concurrency: numOrNull(r.concurrency),
    budgetUsd: numOrNull(r.budget_usd),
    budgetPeriod: toBudgetPeriod(r.budget_period),
    admin: r.admin === true,
    metadata: (r.metadata ?? null) as Record<string, unknown> | null,
  };
}

function toUsage(r: PgRow): UsageRecord {
  return {
    requestId: str(r.request_id),
    keyId: r.key_id == null ? null : str(r.key_id),
    model: str(r.model),
    provider: str(r.provider),
    upstreamModel: str(r.upstream_model),
    promptTokens: num(r.prompt_tokens),
    completionTokens: num(r.completion_tokens),
    totalTokens: num(r.total_tokens),
    costUsd: num(r.cost_usd),
    latencyMs: num(r.latency_ms),
    ttftMs: numOrNull(r.ttft_ms),
    status: num(r.status),
    streamed: r.streamed === true,
    errorCode: r.error_code == null ? null : str(r.error_code),
    cancelled: r.cancelled === true,
    createdAt: dateOrNull(r.created_at) ?? new Date(0),
  };
}

function usageRow(u: UsageRecord): Record<string, string | number | boolean | Date | null> {
  return {
    request_id: u.requestId,
    key_id: u.keyId,
    model: u.model,
    provider: u.provider,
    upstream_model: u.upstreamModel,
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.totalTokens,
    cost_usd: u.costUsd,
    latency_ms: u.latencyMs,
    ttft_ms: u.ttftMs,
    status: u.status,
    streamed: u.streamed,
    error_code: u.errorCode,
    cancelled: u.cancelled,
    created_at: u.createdAt,
  };
}

/** The PostgreSQL implementation of {@link Store}. Create with {@link PostgresStore.open}. */
export class PostgresStore implements Store {
  readonly kind = "postgres" as const;
  readonly #sql: Sql;
  readonly #schema: string | undefined;

  private constructor(sql: Sql, schema: string | undefined) {
    this.#sql = sql;
    this.#schema = schema;
  }

  /** Connects lazily to `url` (`postgres://…`). Does not migrate; call {@link migrate}. */
  static open(url: string, opts: PostgresOptions = {}): Promise<PostgresStore> {
    if (opts.schema !== undefined && !SCHEMA_RE.test(opts.schema)) {
      return Promise.reject(new Error(`invalid schema name '${opts.schema}'`));
    }
    const sql = postgres(url, {
      max: opts.max ?? 10,
      onnotice: () => {}, // "relation already exists, skipping" and friends
      connection: opts.schema ? { search_path: opts.schema } : {},
    });
    return Promise.resolve(new PostgresStore(sql, opts.schema));
  }

  /** Applies pending migrations in one transaction holding an advisory lock. */
  async migrate(): Promise<void> {
    await this.#sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
      if (this.#schema) await tx`CREATE SCHEMA IF NOT EXISTS ${tx(this.#schema)}`;
      await tx.unsafe(SCHEMA_MIGRATIONS_DDL.postgres);
      const applied = await tx<{ version: number }[]>`SELECT version FROM schema_migrations`;
      for (const m of pendingMigrations(applied.map((r) => r.version))) {
        for (const stmt of m.sql.postgres) await tx.unsafe(stmt);
        await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      }
    });
  }

  async createKey(k: NewKey): Promise<KeyRecord> {
    const sql = this.#sql;
    const rows = await sql<PgRow[]>`
      INSERT INTO api_keys (id, name, prefix, hash, created_at, expires_at, models, rpm, tpm, concurrency,
        budget_usd, budget_period, admin, metadata)
      VALUES (${generateKeyId()}, ${k.name}, ${k.prefix}, ${k.hash}, ${new Date()}, ${k.expiresAt ?? null},
        ${this.#json(k.models)}, ${k.rpm ?? null}, ${k.tpm ?? null}, ${k.concurrency ?? null},
        ${k.budgetUsd ?? null}, ${k.budgetPeriod ?? "total"}, ${k.admin ?? false}, ${this.#json(k.metadata)})
      RETURNING *`;
    return toKey(rows[0]!);
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    const sql = this.#sql;
    const byId = await sql<PgRow[]>`SELECT * FROM api_keys WHERE id = ${id}`;
    if (byId[0]) return toKey(byId[0]);
    const byPrefix = await sql<PgRow[]>`SELECT * FROM api_keys WHERE prefix = ${id} LIMIT 2`;
    if (byPrefix.length > 1) {
      throw new ConflictError(`More than one key has the prefix '${id}'; use the key id.`);
    }
    return byPrefix[0] ? toKey(byPrefix[0]) : null;
  }

  async getKeyByHash(hash: string): Promise<KeyRecord | null> {
    const rows = await this.#sql<PgRow[]>`SELECT * FROM api_keys WHERE hash = ${hash}`;
    return rows[0] ? toKey(rows[0]) : null;
  }

  async listKeys(opts: { includeRevoked?: boolean } = {}): Promise<KeyRecord[]> {
    const sql = this.#sql;
    const rows = await sql<PgRow[]>`
      SELECT * FROM api_keys ${opts.includeRevoked ? sql`` : sql`WHERE revoked_at IS NULL`}
      ORDER BY created_at, id`;
    return rows.map(toKey);
  }

  async updateKey(id: string, patch: KeyPatch): Promise<KeyRecord | null> {
    const key = await this.getKey(id);
    if (!key) return null;
    const sql = this.#sql;
    const sets: postgres.PendingQuery<postgres.Row[]>[] = [];
    if (patch.name !== undefined) sets.push(sql`name = ${patch.name}`);
    if (patch.expiresAt !== undefined) sets.push(sql`expires_at = ${patch.expiresAt}`);
    if (patch.models !== undefined) sets.push(sql`models = ${this.#json(patch.models)}`);
    if (patch.rpm !== undefined) sets.push(sql`rpm = ${patch.rpm}`);
    if (patch.tpm !== undefined) sets.push(sql`tpm = ${patch.tpm}`);
    if (patch.concurrency !== undefined) sets.push(sql`concurrency = ${patch.concurrency}`);
    if (patch.budgetUsd !== undefined) sets.push(sql`budget_usd = ${patch.budgetUsd}`);
    if (patch.budgetPeriod !== undefined) sets.push(sql`budget_period = ${patch.budgetPeriod}`);
    if (patch.admin !== undefined) sets.push(sql`admin = ${patch.admin}`);
    if (patch.metadata !== undefined) sets.push(sql`metadata = ${this.#json(patch.metadata)}`);
    if (sets.length === 0) return key;
    const assignments = sets.reduce((acc, s) => sql`${acc}, ${s}`);
    const rows = await sql<PgRow[]>`UPDATE api_keys SET ${assignments} WHERE id = ${key.id} RETURNING *`;
    return rows[0] ? toKey(rows[0]) : null;
  }

  async revokeKey(id: string): Promise<KeyRecord | null> {
    const key = await this.getKey(id);
    if (!key) return null;
    const rows = await this.#sql<PgRow[]>`
      UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ${new Date()}) WHERE id = ${key.id} RETURNING *`;
    return rows[0] ? toKey(rows[0]) : null;
  }

  async countKeys(): Promise<number> {
    const rows = await this.#sql<{ n: string }[]>`SELECT COUNT(*) AS n FROM api_keys`;
    return num(rows[0]?.n);
  }

  async insertUsage(records: UsageRecord[]): Promise<void> {
    if (records.length === 0) return;
    const insert = (sql: Sql, chunk: UsageRecord[]) =>
      sql`INSERT INTO usage_records ${sql(chunk.map(usageRow))}`;
    if (records.length <= INSERT_CHUNK) {
      await insert(this.#sql, records);
      return;
    }
    await this.#sql.begin(async (txn) => {
      const tx = txn as unknown as Sql; // same query API; TransactionSql only lacks the pool-level members
      for (let i = 0; i < records.length; i += INSERT_CHUNK) {
        await insert(tx, records.slice(i, i + INSERT_CHUNK));
      }
    });
  }

  async usageSummary(q: UsageQuery): Promise<UsageAggregate[]> {
    const sql = this.#sql;
    const group = q.by === "model"
      ? sql`model`
      : q.by === "key"
      ? sql`COALESCE(key_id, ${NO_KEY_GROUP})`
      : sql`to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`;
    const rows = await sql<PgRow[]>`
      SELECT ${group} AS grp, COUNT(*) AS requests,
        COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,
        COALESCE(SUM(completion_tokens), 0) AS completion_tokens,
        COALESCE(SUM(total_tokens), 0) AS total_tokens,
        COALESCE(SUM(cost_usd), 0) AS cost_usd,
        COUNT(*) FILTER (WHERE status >= 400) AS errors
      FROM usage_records ${this.#where(q)} GROUP BY 1 ORDER BY 1`;
    return rows.map((r) => ({
      group: str(r.grp),
      requests: num(r.requests),
      promptTokens: num(r.prompt_tokens),
      completionTokens: num(r.completion_tokens),
      totalTokens: num(r.total_tokens),
      costUsd: num(r.cost_usd),
      errors: num(r.errors),
    }));
  }

  async spendSince(keyId: string, since: Date | null): Promise<number> {
    const rows = await this.#sql<PgRow[]>`
      SELECT COALESCE(SUM(cost_usd), 0) AS spend FROM usage_records
      ${this.#where({ keyId, since: since ?? undefined })}`;
    return num(rows[0]?.spend);
  }

  async countUsage(filter: { keyId?: string } = {}): Promise<number> {
    const rows = await this.#sql<PgRow[]>`SELECT COUNT(*) AS n FROM usage_records ${this.#where(filter)}`;
    return num(rows[0]?.n);
  }

  async listUsage(opts: { keyId?: string; limit?: number } = {}): Promise<UsageRecord[]> {
    const rows = await this.#sql<PgRow[]>`
      SELECT * FROM usage_records ${this.#where(opts)}
      ORDER BY created_at DESC, id DESC LIMIT ${clampLimit(opts.limit)}`;
    return rows.map(toUsage);
  }

  /** Ends the pool, letting running queries finish (at most 5 s). */
  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }

  /** A JSONB parameter (serialised once, by the driver), or SQL NULL. */
  #json(v: string[] | Record<string, unknown> | null | undefined): postgres.Parameter | null {
    return v == null ? null : this.#sql.json(v as postgres.JSONValue);
  }

  #where(f: { keyId?: string; since?: Date; until?: Date }): postgres.PendingQuery<postgres.Row[]> {
    const sql = this.#sql;
    const conds: postgres.PendingQuery<postgres.Row[]>[] = [];
    if (f.keyId !== undefined) conds.push(sql`key_id = ${f.keyId}`);
    if (f.since) conds.push(sql`created_at >= ${f.since}`);
    if (f.until) conds.push(sql`created_at < ${f.until}`);
    if (conds.length === 0) return sql``;
    return sql`WHERE ${conds.reduce((acc, c) => sql`${acc} AND ${c}`)}`;
  }
}
