/** Opens what the admin commands need (store, bus) from the same Config as `serve`. */
import { type Config, ConfigError, loadConfig } from "../core/config.ts";
import { KeyAdmin } from "../core/key_admin.ts";
import { type Bus, openBus } from "../core/pubsub.ts";
import { openStore } from "../core/store/open.ts";
import type { Store } from "../core/store/store.ts";
import type { Output } from "./output.ts";

export interface AdminAccess {
  config: Config;
  store: Store;
  bus: Bus;
  keys: KeyAdmin;
  close(): Promise<void>;
}

export async function openAdmin(configFile: string | undefined, out: Output): Promise<AdminAccess> {
  let config: Config;
  try {
    config = await loadConfig({ env: Deno.env.toObject(), file: configFile });
  } catch (err) {
    if (err instanceof ConfigError) {
      out.error(err.message);
      Deno.exit(2);
    }
    throw err;
  }
  const store = await openStore(config.databaseUrl, { dataDir: config.dataDir });
  const bus = openBus(config.redisUrl);
  return {
    config,
    store,
    bus,
    keys: new KeyAdmin(store, bus),
    async close() {
      await bus.close().catch(() => {});
      await store.close();
    },
  };
}
