/**
 * A worker thread that owns its own connection to a libSQL file and writes usage
 * batches. The libSQL driver runs SQLite on the calling thread, so writing from the
 * server's thread would pause every request in flight for the length of each batch;
 * here the pause happens on another thread. Protocol: `{id, type: "open" | "insert" |
 * "close", …}` → `{id, ok, error?}`.
 */
/// <reference lib="deno.worker" />
import { openStore } from "../core/store/open.ts";
import type { Store, UsageRecord } from "../core/store/store.ts";

let store: Store | undefined;

self.onmessage = async (e: MessageEvent) => {
  const msg = e.data as
    | { id: number; type: "open"; url: string | undefined; dataDir: string }
    | { id: number; type: "insert"; records: UsageRecord[] }
    | { id: number; type: "close" };
  try {
    if (msg.type === "open") store = await openStore(msg.url, { dataDir: msg.dataDir, skipMigrations: true });
    else if (msg.type === "insert") await store!.insertUsage(msg.records);
    else {
      await store?.close();
      store = undefined;
    }
    self.postMessage({ id: msg.id, ok: true });
  } catch (err) {
    self.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
};
