/**
 * Key management shared by `llmgw keys` and `/admin/keys`: validated input, key
 * creation (the raw key is returned once and never stored), updates and revocation
 * announced on the bus, and the public view of a key (no hash, no key).
 */
import { z } from "zod";
import { KEY_CHANNEL } from "./auth.ts";
import { InvalidRequestError, NotFoundError } from "./errors.ts";
import { generateApiKey, hashApiKey, keyPrefix } from "./keys.ts";
import type { Bus } from "./pubsub.ts";
import type { KeyPatch, KeyRecord, Store } from "./store/store.ts";

/** `30d`, `12h`, `90m`, or an ISO date → a Date; `never` / null → null. */
export function parseExpiry(v: string | null, now = Date.now()): Date | null {
  if (v === null || v === "never" || v === "") return null;
  const m = /^(\d+)\s*([mhdw])$/.exec(v.trim());
  if (m) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as "m" | "h" | "d" | "w"];
    return new Date(now + Number(m[1]) * unit);
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) {
    throw new InvalidRequestError(`Invalid expiry '${v}': use 30d, 12h or an ISO date.`, {
      param: "expires_at",
    });
  }
  return new Date(t);
}

const positiveInt = z.number().int().positive().nullable().optional();

/** The body of POST / PATCH /admin/keys (snake_case, as the HTTP API speaks). */
export const KeyInput = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  models: z.array(z.string().min(1)).nullable().optional(),
  rpm: positiveInt,
  tpm: positiveInt,
  concurrency: positiveInt,
  budget_usd: z.number().nonnegative().nullable().optional(),
  budget_period: z.enum(["total", "day", "month"]).optional(),
  expires_at: z.string().nullable().optional(),
  admin: z.boolean().optional(),
  metadata: z.record(z.string(), z.unknown()).nullable().optional(),
});
export type KeyInput = z.infer<typeof KeyInput>;

function toPatch(input: KeyInput): KeyPatch {
  const patch: KeyPatch = {};
  if (input.name !== undefined) patch.name = input.name;
  if (input.models !== undefined) patch.models = input.models;
  if (input.rpm !== undefined) patch.rpm = input.rpm;
  if (input.tpm !== undefined) patch.tpm = input.tpm;
  if (input.concurrency !== undefined) patch.concurrency = input.concurrency;
  if (input.budget_usd !== undefined) patch.budgetUsd = input.budget_usd;
  if (input.budget_period !== undefined) patch.budgetPeriod = input.budget_period;
  if (input.expires_at !== undefined) patch.expiresAt = parseExpiry(input.expires_at);
  if (input.admin !== undefined) patch.admin = input.admin;
  if (input.metadata !== undefined) patch.metadata = input.metadata;
  return patch;
}

/** The public view of a key: everything but the hash. */
export function keyView(k: KeyRecord): Record<string, unknown> {
  return {
    id: k.id,
    object: "api_key",
    name: k.name,
    prefix: k.prefix,
    created_at: k.createdAt.toISOString(),
    expires_at: k.expiresAt?.toISOString() ?? null,
    revoked_at: k.revokedAt?.toISOString() ?? null,
    models: k.models,
    rpm: k.rpm,
    tpm: k.tpm,
    concurrency: k.concurrency,
    budget_usd: k.budgetUsd,
    budget_period: k.budgetPeriod,
    admin: k.admin,
    metadata: k.metadata,
  };
}

export class KeyAdmin {
  constructor(private readonly store: Store, private readonly bus?: Bus) {}

  /** Creates a key; the raw key is in the result and nowhere else. */
  async create(input: KeyInput): Promise<{ record: KeyRecord; key: string }> {
    const key = generateApiKey();
    const patch = toPatch(input);
    const record = await this.store.createKey({
      ...patch,
      name: patch.name ?? "unnamed",
      hash: await hashApiKey(key),
      prefix: keyPrefix(key),
    });
    return { record, key };
  }

  list(includeRevoked = false): Promise<KeyRecord[]> {
    return this.store.listKeys({ includeRevoked });
  }

  async get(id: string): Promise<KeyRecord> {
    const k = await this.store.getKey(id);
    if (!k) throw new NotFoundError(`No key '${id}'.`, { code: "key_not_found", param: "id" });
    return k;
  }

  async update(id: string, input: KeyInput): Promise<KeyRecord> {
    const k = await this.store.updateKey(id, toPatch(input));
    if (!k) throw new NotFoundError(`No key '${id}'.`, { code: "key_not_found", param: "id" });
    await this.announce(k.id);
    return k;
  }

  async revoke(id: string): Promise<KeyRecord> {
    const k = await this.store.revokeKey(id);
    if (!k) throw new NotFoundError(`No key '${id}'.`, { code: "key_not_found", param: "id" });
    await this.announce(k.id);
    return k;
  }

  private async announce(keyId: string): Promise<void> {
    await this.bus?.publish(KEY_CHANNEL, keyId).catch(() => {});
  }
}
