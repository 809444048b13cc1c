/**
 * The persistence interface of the gateway: API keys and usage records. Two
 * implementations exist — libSQL/SQLite (`libsql.ts`) and PostgreSQL (`postgres.ts`) —
 * chosen by `openStore()` in `open.ts`. Raw API keys are never stored: only their
 * SHA-256 hash and a short visible prefix.
 */

/** The window a key's budget applies to. */
export type BudgetPeriod = "total" | "day" | "month";

/** The stored budget periods, for validation. */
export const BUDGET_PERIODS: readonly BudgetPeriod[] = ["total", "day", "month"];

/** One API key as stored (never with the key itself). */
export interface KeyRecord {
  /** `key_` + random base62; not secret. */
  id: string;
  name: string;
  /** Visible prefix of the key (e.g. `sk-llmgw-AbCd`). */
  prefix: string;
  /** SHA-256 hex of the full key. */
  hash: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  /** Allowed models (null = all); entries may end with `*` as a prefix wildcard. */
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  concurrency: number | null;
  budgetUsd: number | null;
  budgetPeriod: BudgetPeriod;
  admin: boolean;
  metadata: Record<string, unknown> | null;
}

/** What `createKey` needs; the id and `createdAt` are assigned by the store. */
export interface NewKey {
  name: string;
  hash: string;
  prefix: string;
  expiresAt?: Date | null;
  models?: string[] | null;
  rpm?: number | null;
  tpm?: number | null;
  concurrency?: number | null;
  budgetUsd?: number | null;
  budgetPeriod?: BudgetPeriod;
  admin?: boolean;
  metadata?: Record<string, unknown> | null;
}

/** A partial update of a key; `undefined` fields are left alone, `null` clears. */
export type KeyPatch = Partial<Omit<NewKey, "hash" | "prefix">>;

/** One finished (or failed / cancelled) request. */
export interface UsageRecord {
  requestId: string;
  keyId: string | null;
  model: string;
  provider: string;
  upstreamModel: string;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  costUsd: number;
  latencyMs: number;
  ttftMs: number | null;
  status: number;
  streamed: boolean;
  errorCode: string | null;
  cancelled: boolean;
  createdAt: Date;
}

/** A usage summary request. `since` is inclusive, `until` exclusive. */
export interface UsageQuery {
  keyId?: string;
  since?: Date;
  until?: Date;
  by: "model" | "key" | "day";
}

/**
 * One group of a usage summary. `group` is the model name, the key id (or
 * {@link NO_KEY_GROUP} for requests without a key) or the UTC day `YYYY-MM-DD`.
 * `errors` counts records with `status >= 400`.
 */
export interface UsageAggregate {
  group: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  costUsd: number;
  errors: number;
}

/** The `group` of usage without a key in a `by: "key"` summary. */
export const NO_KEY_GROUP = "(none)";

/** Default and maximum row counts for `listUsage`. */
export const LIST_USAGE_DEFAULT_LIMIT = 100;
export const LIST_USAGE_MAX_LIMIT = 10_000;

/** The persistence interface; see the module doc. */
export interface Store {
  readonly kind: "libsql" | "postgres";
  /** Applies pending migrations (idempotent; safe to run concurrently). */
  migrate(): Promise<void>;
  createKey(k: NewKey): Promise<KeyRecord>;
  /**
   * A key by id, or by its visible prefix. An id match wins; a prefix that matches
   * more than one key throws a `ConflictError`.
   */
  getKey(id: string): Promise<KeyRecord | null>;
  getKeyByHash(hash: string): Promise<KeyRecord | null>;
  /** Keys ordered by creation time (oldest first); revoked ones only on request. */
  listKeys(opts?: { includeRevoked?: boolean }): Promise<KeyRecord[]>;
  /** Updates a key (by id or prefix); null when there is none. */
  updateKey(id: string, patch: KeyPatch): Promise<KeyRecord | null>;
  /** Revokes a key (by id or prefix); a revoked key keeps its first `revokedAt`. */
  revokeKey(id: string): Promise<KeyRecord | null>;
  /** All keys, revoked included. */
  countKeys(): Promise<number>;
  /** Writes a batch atomically (one multi-row insert / transaction per batch). */
  insertUsage(records: UsageRecord[]): Promise<void>;
  usageSummary(q: UsageQuery): Promise<UsageAggregate[]>;
  /** Sum of `costUsd` of a key since `since` (inclusive; null = all time). */
  spendSince(keyId: string, since: Date | null): Promise<number>;
  countUsage(filter?: { keyId?: string }): Promise<number>;
  /** Newest first; `limit` defaults to 100 (max 10 000). */
  listUsage(opts?: { keyId?: string; limit?: number }): Promise<UsageRecord[]>;
  close(): Promise<void>;
}

/** Clamps a `listUsage` limit into [1, LIST_USAGE_MAX_LIMIT]. */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return LIST_USAGE_DEFAULT_LIMIT;
  return Math.min(LIST_USAGE_MAX_LIMIT, Math.max(1, Math.floor(limit)));
}

/** Narrows an unknown stored value to a BudgetPeriod (unknown values → "total"). */
export function toBudgetPeriod(v: unknown): BudgetPeriod {
  return v === "day" || v === "month" ? v : "total";
}
