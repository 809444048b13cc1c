/**
 * Store on libSQL / SQLite via `@libsql/client`: local files (`file:` URLs, WAL mode,
 * busy timeout) and remote servers (`libsql://`, `http(s)://`, `ws(s)://`) alike.
 * Times are stored as integer milliseconds since the epoch, JSON columns as text.
 */
import { type Client, createClient, type InStatement, type InValue, type Row } from "@libsql/client";
import { ConflictError } from "../errors.ts";
import { generateKeyId } from "../keys.ts";
import { pendingMigrations, SCHEMA_MIGRATIONS_DDL } from "./migrations.ts";
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

/** Options for {@link LibsqlStore.open}. */
export interface LibsqlOptions {
  /** Auth token for remote servers (also accepted as `?authToken=` in the URL). */
  authToken?: string;
  /** Busy timeout for file databases, in ms (default 5000). */
  busyTimeoutMs?: number;
}

/** Rows per INSERT statement (16 columns → 8000 parameters, under SQLite's 32766). */
const INSERT_CHUNK = 500;

/** Column order of the usage INSERT; matches `usageArgs`. */
const USAGE_COLUMNS = ("request_id key_id model provider upstream_model prompt_tokens completion_tokens " +
  "total_tokens cost_usd latency_ms ttft_ms status streamed error_code cancelled created_at").split(" ");

/**
 * For a `file:` URL (or a bare path), the file system path of the database;
 * null for remote URLs and in-memory databases.
 */
export function libsqlFilePath(url: string): string | null {
  if (!url.startsWith("file:")) return /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? null : url;
  let path = url.slice("file:".length).replace(/[?#].*$/, "");
  if (path.startsWith("//")) path = path.slice(2).replace(/^localhost/i, "");
  if (path === "" || path === ":memory:" || path.startsWith(":memory:")) return null;
  return decodeURIComponent(path);
}

/** Turns a bare path into a `file:` URL; other URLs pass through. */
export function normalizeLibsqlUrl(url: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) && !/^[a-z]:[\\/]/i.test(url)) return url;
  return `file:${url}`;
}

function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i <= 0 ? (i === 0 ? "/" : ".") : path.slice(0, i);
}

const num = (v: unknown): number => (typeof v === "number" ? v : v == null ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v == null ? null : Number(v));
const dateOrNull = (v: unknown): Date | null => (v == null ? null : new Date(Number(v)));
const str = (v: unknown): string => (v == null ? "" : String(v));
const ms = (d: Date | null | undefined): number | null => (d == null ? null : d.getTime());
const json = (v: unknown): string | null => (v == null ? null : JSON.stringify(v));

function parseJson<T>(v: unknown): T | null {
  if (v == null) return null;
  return JSON.parse(String(v)) as T;
}

function toKey(r: Row): KeyRecord {
  return {
    id: str(r["id"]),
    name: str(r["name"]),
    prefix: str(r["prefix"]),
    hash: str(r["hash"]),
    createdAt: new Date(num(r["created_at"])),
    expiresAt: dateOrNull(r["expires_at"]),
    revokedAt: dateOrNull(r["revoked_at"]),
    models: parseJson<string[]>(r["models"]),
    rpm: numOrNull(r["rpm"]),
    tpm: numOrNull(r["tpm"]),
    concurrency: numOrNull(r["concurrency"]),
    budgetUsd: numOrNull(r["budget_usd"]),
    budgetPeriod: toBudgetPeriod(r["budget_period"]),
    admin: num(r["admin"]) !== 0,
    metadata: parseJson<Record<string, unknown>>(r["metadata"]),
  };
}

function toUsage(r: Row): UsageRecord {
  return {
    requestId: str(r["request_id"]),
    keyId: r["key_id"] == null ? null : str(r["key_id"]),
    model: str(r["model"]),
    provider: str(r["provider"]),
    upstreamModel: str(r["upstream_model"]),
    promptTokens: num(r["prompt_tokens"]),
    completionTokens: num(r["completion_tokens"]),
    totalTokens: num(r["total_tokens"]),
    costUsd: num(r["cost_usd"]),
    latencyMs: num(r["latency_ms"]),
    ttftMs: numOrNull(r["ttft_ms"]),
    status: num(r["status"]),
    streamed: num(r["streamed"]) !== 0,
    errorCode: r["error_code"] == null ? null : str(r["error_code"]),
    cancelled: num(r["cancelled"]) !== 0,
    createdAt: new Date(num(r["created_at"])),
  };
}

function usageArgs(u: UsageRecord): InValue[] {
  return [
    u.requestId,
    u.keyId,
    u.model,
    u.provider,
    u.upstreamModel,
    u.promptTokens,
    u.completionTokens,
    u.totalTokens,
    u.costUsd,
    u.latencyMs,
    u.ttftMs,
    u.status,
    u.streamed ? 1 : 0,
    u.errorCode,
    u.cancelled ? 1 : 0,
    u.createdAt.getTime(),
  ];
}

/** Columns a KeyPatch may set, with their encoders. */
const PATCH_COLUMNS: { [K in keyof Required<KeyPatch>]: [string, (v: Required<KeyPatch>[K]) => InValue] } = {
  name: ["name", (v) => v],
  expiresAt: ["expires_at", (v) => ms(v)],
  models: ["models", (v) => json(v)],
  rpm: ["rpm", (v) => v],
  tpm: ["tpm", (v) => v],
  concurrency: ["concurrency", (v) => v],
  budgetUsd: ["budget_usd", (v) => v],
  budgetPeriod: ["budget_period", (v) => v],
  admin: ["admin", (v) => (v ? 1 : 0)],
  metadata: ["metadata", (v) => json(v)],
};

/** The libSQL implementation of {@link Store}. Create with {@link LibsqlStore.open}. */
export class LibsqlStore implements Store {
  readonly kind = "libsql" as const;
  readonly #db: Client;

  private constructor(db: Client) {
    this.#db = db;
  }

  /**
   * Opens (and for files creates, with their directory) the database at `url`.
   * Does not migrate; call {@link migrate} (or use `openStore`).
   */
  static async open(url: string, opts: LibsqlOptions = {}): Promise<LibsqlStore> {
    const full = normalizeLibsqlUrl(url);
    const file = libsqlFilePath(full);
    if (file !== null) await Deno.mkdir(dirname(file), { recursive: true });
    const db = createClient({
      url: full,
      authToken: opts.authToken,
      timeout: file !== null ? (opts.busyTimeoutMs ?? 5000) : undefined,
    });
    if (file !== null) {
      try {
        // Persistent in the file; every later connection of the pool uses WAL too.
        await db.execute("PRAGMA journal_mode = WAL");
      } catch {
        // Another process holds a lock while switching; it is setting WAL itself.
      }
    }
    return new LibsqlStore(db);
  }

  /** Applies pending migrations inside one write (BEGIN IMMEDIATE) transaction. */
  async migrate(): Promise<void> {
    const tx = await this.#db.transaction("write");
    try {
      await tx.execute(SCHEMA_MIGRATIONS_DDL.libsql);
      const rs = await tx.execute("SELECT version FROM schema_migrations");
      const pending = pendingMigrations(rs.rows.map((r) => num(r["version"])));
      for (const m of pending) {
        for (const sql of m.sql.libsql) await tx.execute(sql);
        await tx.execute({
          sql: "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
          args: [m.version, m.name, Date.now()],
        });
      }
      await tx.commit();
    } finally {
      tx.close();
    }
  }

  async createKey(k: NewKey): Promise<KeyRecord> {
    const rec: KeyRecord = {
      id: generateKeyId(),
      name: k.name,
      prefix: k.prefix,
      hash: k.hash,
      createdAt: new Date(),
      expiresAt: k.expiresAt ?? null,
      revokedAt: null,
      models: k.models ?? null,
      rpm: k.rpm ?? null,
      tpm: k.tpm ?? null,
      concurrency: k.concurrency ?? null,
      budgetUsd: k.budgetUsd ?? null,
      budgetPeriod: k.budgetPeriod ?? "total",
      admin: k.admin ?? false,
      metadata: k.metadata ?? null,
    };
    await this.#db.execute({
      sql:
        `INSERT INTO api_keys (id, name, prefix, hash, created_at, expires_at, revoked_at, models, rpm, tpm,
              concurrency, budget_usd, budget_period, admin, metadata)
            VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)`,
      args: [
        rec.id,
        rec.name,
        rec.prefix,
        rec.hash,
        rec.createdAt.getTime(),
        ms(rec.expiresAt),
        json(rec.models),
        rec.rpm,
        rec.tpm,
        rec.concurrency,
        rec.budgetUsd,
        rec.budgetPeriod,
        rec.admin ? 1 : 0,
        json(rec.metadata),
      ],
    });
    return rec;
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    const byId = await this.#db.execute({ sql: "SELECT * FROM api_keys WHERE id = ?", args: [id] });
    if (byId.rows[0]) return toKey(byId.rows[0]);
    const byPrefix = await this.#db.execute({
      sql: "SELECT * FROM api_keys WHERE prefix = ? LIMIT 2",
      args: [id],
    });
    if (byPrefix.rows.length > 1) {
      throw new ConflictError(`More than one key has the prefix '${id}'; use the key id.`);
    }
    return byPrefix.rows[0] ? toKey(byPrefix.rows[0]) : null;
  }

  async getKeyByHash(hash: string): Promise<KeyRecord | null> {
    const rs = await this.#db.execute({ sql: "SELECT * FROM api_keys WHERE hash = ?", args: [hash] });
    return rs.rows[0] ? toKey(rs.rows[0]) : null;
  }

  async listKeys(opts: { includeRevoked?: boolean } = {}): Promise<KeyRecord[]> {
    const where = opts.includeRevoked ? "" : "WHERE revoked_at IS NULL";
    const rs = await this.#db.execute(`SELECT * FROM api_keys ${where} ORDER BY created_at, id`);
    return rs.rows.map(toKey);
  }

  async updateKey(id: string, patch: KeyPatch): Promise<KeyRecord | null> {
    const key = await this.getKey(id);
    if (!key) return null;
    const sets: string[] = [];
    const args: InValue[] = [];
    for (const [field, [column, encode]] of Object.entries(PATCH_COLUMNS)) {
      const value = patch[field as keyof KeyPatch];
      if (value === undefined) continue;
      sets.push(`${column} = ?`);
      args.push((encode as (v: unknown) => InValue)(value));
    }
    if (sets.length === 0) return key;
    await this.#db.execute({
      sql: `UPDATE api_keys SET ${sets.join(", ")} WHERE id = ?`,
      args: [...args, key.id],
    });
    return await this.getKey(key.id);
  }

  async revokeKey(id: string): Promise<KeyRecord | null> {
    const key = await this.getKey(id);
    if (!key) return null;
    await this.#db.execute({
      sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
      args: [Date.now(), key.id],
    });
    return await this.getKey(key.id);
  }

  async countKeys(): Promise<number> {
    const rs = await this.#db.execute("SELECT COUNT(*) AS n FROM api_keys");
    return num(rs.rows[0]?.["n"]);
  }

  async insertUsage(records: UsageRecord[]): Promise<void> {
    if (records.length === 0) return;
    const stmts: InStatement[] = [];
    const row = `(${USAGE_COLUMNS.map(() => "?").join(", ")})`;
    for (let i = 0; i < records.length; i += INSERT_CHUNK) {
      const chunk = records.slice(i, i + INSERT_CHUNK);
      stmts.push({
        sql: `INSERT INTO usage_records (${USAGE_COLUMNS.join(", ")}) VALUES ${
          chunk.map(() => row).join(", ")
        }`,
        args: chunk.flatMap(usageArgs),
      });
    }
    if (stmts.length === 1) await this.#db.execute(stmts[0]!);
    else await this.#db.batch(stmts, "write");
  }

  async usageSummary(q: UsageQuery): Promise<UsageAggregate[]> {
    const group = q.by === "model"
      ? "model"
      : q.by === "key"
      ? `COALESCE(key_id, '${NO_KEY_GROUP}')`
      : "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')";
    const { where, args } = usageWhere(q);
    const rs = await this.#db.execute({
      sql: `SELECT ${group} AS grp, COUNT(*) AS requests,
              COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,
              COALESCE(SUM(completion_tokens), 0) AS completion_tokens,
              COALESCE(SUM(total_tokens), 0) AS total_tokens,
              COALESCE(SUM(cost_usd), 0) AS cost_usd,
              COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0) AS errors
            FROM usage_records ${where} GROUP BY grp ORDER BY grp`,
      args,
    });
    return rs.rows.map((r) => ({
      group: str(r["grp"]),
      requests: num(r["requests"]),
      promptTokens: num(r["prompt_tokens"]),
      completionTokens: num(r["completion_tokens"]),
      totalTokens: num(r["total_tokens"]),
      costUsd: num(r["cost_usd"]),
      errors: num(r["errors"]),
    }));
  }

  async spendSince(keyId: string, since: Date | null): Promise<number> {
    const { where, args } = usageWhere({ keyId, since: since ?? undefined });
    const rs = await this.#db.execute({
      sql: `SELECT COALESCE(SUM(cost_usd), 0) AS spend FROM usage_records ${where}`,
      args,
    });
    return num(rs.rows[0]?.["spend"]);
  }

  async countUsage(filter: { keyId?: string } = {}): Promise<number> {
    const { where, args } = usageWhere(filter);
    const rs = await this.#db.execute({ sql: `SELECT COUNT(*) AS n FROM usage_records ${where}`, args });
    return num(rs.rows[0]?.["n"]);
  }

  async listUsage(opts: { keyId?: string; limit?: number } = {}): Promise<UsageRecord[]> {
    const { where, args } = usageWhere(opts);
    const rs = await this.#db.execute({
      sql: `SELECT * FROM usage_records ${where} ORDER BY created_at DESC, id DESC LIMIT ?`,
      args: [...args, clampLimit(opts.limit)],
    });
    return rs.rows.map(toUsage);
  }

  close(): Promise<void> {
    this.#db.close();
    return Promise.resolve();
  }
}

function usageWhere(f: { keyId?: string; since?: Date; until?: Date }): { where: string; args: InValue[] } {
  const conds: string[] = [];
  const args: InValue[] = [];
  if (f.keyId !== undefined) {
    conds.push("key_id = ?");
    args.push(f.keyId);
  }
  if (f.since) {
    conds.push("created_at >= ?");
    args.push(f.since.getTime());
  }
  if (f.until) {
    conds.push("created_at < ?");
    args.push(f.until.getTime());
  }
  return { where: conds.length ? `WHERE ${conds.join(" AND ")}` : "", args };
}
