/**
 * Authentication of `Authorization: Bearer <key>`: the key is hashed (SHA-256) and
 * looked up in the store through a short-TTL per-process cache; revocations and
 * updates are broadcast on the bus so that every replica drops its cached entry at
 * once (Redis pub/sub when Redis is configured). Messages mask the key; logs never
 * see it.
 */
import { AuthenticationError } from "./errors.ts";
import type { Caller } from "./gateway.ts";
import { hashApiKeySync, keyPrefix, timingSafeEqual } from "./keys.ts";
import type { Bus } from "./pubsub.ts";
import type { KeyRecord, Store } from "./store/store.ts";

/** An authenticated caller. */
export interface AuthedCaller extends Caller {
  admin: boolean;
  /** The stored key (absent for the env admin key and when auth is off). */
  key?: KeyRecord;
  /** Whether this caller may use `model` (as requested by the client). */
  canUse(model: string): boolean;
}

export interface Authenticator {
  /** Throws AuthenticationError (401) for a missing, unknown, revoked or expired key. */
  authenticate(req: Request): Promise<AuthedCaller>;
}

/** The caller when authentication is off. */
export const OPEN_CALLER: AuthedCaller = { keyId: null, admin: true, canUse: () => true };

/** The bus channel on which key changes are announced (message: the key id). */
export const KEY_CHANNEL = "llmgw:keys";

/** Whether a key's `models` list allows `model` (`*` suffix = prefix match). */
export function modelAllowed(models: string[] | null, model: string): boolean {
  if (!models || models.length === 0) return true;
  for (const m of models) {
    if (m === "*" || m === model) return true;
    if (m.endsWith("*") && model.startsWith(m.slice(0, -1))) return true;
  }
  return false;
}

const stripLatest = (m: string) => (m.endsWith(":latest") ? m.slice(0, -7) : m);

/**
 * The names a routed model may be allowed under: as requested, and as
 * `<provider>/<upstream model>` (Ollama's `:latest` tag optional in both).
 * A bare upstream name alone never counts, so allowing `llama3.2` does not open
 * `openrouter/llama3.2`.
 */
export function allowedNames(requested: string, provider: string, upstream: string): string[] {
  const names = [
    requested,
    stripLatest(requested),
    `${provider}/${upstream}`,
    `${provider}/${stripLatest(upstream)}`,
  ];
  return [...new Set(names)];
}

/** OpenAI's way of showing a key in a message: a few characters each side. */
export function maskForMessage(key: string): string {
  if (key.length <= 8) return "*".repeat(key.length);
  return `${key.slice(0, 3)}${"*".repeat(Math.min(key.length - 7, 12))}${key.slice(-4)}`;
}

export function callerFor(record: KeyRecord): AuthedCaller {
  return {
    keyId: record.id,
    keyName: record.name,
    admin: record.admin,
    key: record,
    canUse: (model) => modelAllowed(record.models, model),
  };
}

interface CacheEntry {
  record: KeyRecord | null;
  expires: number;
}

export interface KeyAuthOptions {
  store: Store;
  bus?: Bus;
  /** How long a looked-up key (or a miss) is trusted without asking the store again. */
  cacheTtlMs: number;
  /** A static admin key from the environment (LLMGW_ADMIN_KEY), compared in constant time. */
  adminKey?: string;
  /** Id or prefix of the key that requests without a key run as. */
  anonymousKey?: string;
  now?: () => number;
}

const MISSING_KEY_MESSAGE =
  "You didn't provide an API key. You need to provide your API key in an Authorization " +
  "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";

export class KeyAuth implements Authenticator {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly now: () => number;

  private constructor(private readonly opts: KeyAuthOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Creates the authenticator and subscribes to key changes on the bus. */
  static async create(opts: KeyAuthOptions): Promise<KeyAuth> {
    const auth = new KeyAuth(opts);
    await opts.bus?.subscribe(KEY_CHANNEL, (keyId) => auth.invalidate(keyId));
    return auth;
  }

  /** Drops cached entries of a key (or everything for "*"). */
  invalidate(keyId: string): void {
    if (keyId === "*") {
      this.cache.clear();
      return;
    }
    for (const [hash, entry] of this.cache) {
      if (!entry.record || entry.record.id === keyId) this.cache.delete(hash);
    }
    this.anonymous = undefined;
  }

  private anonymous: { record: KeyRecord | null; expires: number } | undefined;

  async authenticate(req: Request): Promise<AuthedCaller> {
    const header = req.headers.get("authorization");
    if (!header) return await this.anonymousCaller();
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) {
      throw new AuthenticationError(
        "Invalid Authorization header: expected 'Authorization: Bearer YOUR_KEY'.",
        { code: "invalid_api_key" },
      );
    }
    const key = m[1]!;
    if (this.opts.adminKey && timingSafeEqual(key, this.opts.adminKey)) {
      return { keyId: "admin", keyName: "LLMGW_ADMIN_KEY", admin: true, canUse: () => true };
    }
    const hash = hashApiKeySync(key);
    const record = await this.lookup(hash);
    if (!record || !timingSafeEqual(record.hash, hash)) throw this.invalid(key, "Incorrect API key provided");
    if (record.revokedAt) throw this.invalid(key, "This API key has been revoked");
    if (record.expiresAt && record.expiresAt.getTime() <= Date.now()) {
      throw this.invalid(key, "This API key has expired");
    }
    return callerFor(record);
  }

  private invalid(key: string, what: string): AuthenticationError {
    const shown = key.startsWith("sk-llmgw-") ? `${keyPrefix(key)}…${key.slice(-4)}` : maskForMessage(key);
    return new AuthenticationError(`${what}: ${shown}. Ask the gateway's operator for a valid key.`, {
      code: "invalid_api_key",
    });
  }

  private async lookup(hash: string): Promise<KeyRecord | null> {
    const t = this.now();
    const hit = this.cache.get(hash);
    if (hit && hit.expires > t) return hit.record;
    const record = await this.opts.store.getKeyByHash(hash);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { record, expires: t + this.opts.cacheTtlMs });
    return record;
  }

  private async anonymousCaller(): Promise<AuthedCaller> {
    const id = this.opts.anonymousKey;
    if (!id) throw new AuthenticationError(MISSING_KEY_MESSAGE, { code: null });
    const t = this.now();
    if (!this.anonymous || this.anonymous.expires <= t) {
      this.anonymous = { record: await this.opts.store.getKey(id), expires: t + this.opts.cacheTtlMs };
    }
    const record = this.anonymous.record;
    if (!record || record.revokedAt || (record.expiresAt && record.expiresAt.getTime() <= Date.now())) {
      throw new AuthenticationError(MISSING_KEY_MESSAGE, { code: null });
    }
    // Anonymous callers never get admin rights, whatever the key says.
    return { ...callerFor(record), admin: false };
  }
}
