/**
 * First start: with an empty key store and no LLMGW_ADMIN_KEY, create one admin key,
 * write it to `<dataDir>/admin.key` (mode 0600) and log only that path and the key's
 * prefix — never the key.
 */
import type { Config } from "../core/config.ts";
import type { KeyAdmin } from "../core/key_admin.ts";
import type { Logger } from "../core/log.ts";
import type { Store } from "../core/store/store.ts";

export async function ensureAdminKey(
  store: Store,
  admin: KeyAdmin,
  config: Config,
  log: Logger,
): Promise<void> {
  if (config.adminKey) return;
  if ((await store.countKeys()) > 0) return;
  const { record, key } = await admin.create({ name: "admin", admin: true });
  await Deno.mkdir(config.dataDir, { recursive: true });
  const path = `${config.dataDir.replace(/[\\/]+$/, "")}/admin.key`;
  await Deno.writeTextFile(path, key + "\n", { mode: 0o600 });
  await Deno.chmod(path, 0o600).catch(() => {});
  log.log("info", `created the first admin key (${record.prefix}…); it is in ${path} (mode 0600)`, {
    keyId: record.id,
  });
}
