/**
 * The usage writer's storage: for a libSQL file, a worker thread with its own
 * connection (see usage_worker.ts), so that writes never pause the request path;
 * for PostgreSQL and remote libSQL, whose drivers do not block, the store itself.
 */
import type { Store, UsageRecord } from "../core/store/store.ts";

export interface UsageSinkStore {
  insertUsage(records: UsageRecord[]): Promise<void>;
  close(): Promise<void>;
}

/** Whether a database URL names a local libSQL file (the default when absent). */
export function isLocalFile(url: string | undefined): boolean {
  return !url || url.startsWith("file:") || !/^[a-z][a-z0-9+.-]*:\/\//i.test(url);
}

class WorkerSink implements UsageSinkStore {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

  constructor(private readonly worker: Worker) {
    worker.onmessage = (e: MessageEvent) => {
      const { id, ok, error } = e.data as { id: number; ok: boolean; error?: string };
      const w = this.waiting.get(id);
      if (!w) return;
      this.waiting.delete(id);
      if (ok) w.resolve();
      else w.reject(new Error(error ?? "usage worker failed"));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      for (const w of this.waiting.values()) w.reject(new Error(`usage worker crashed: ${e.message}`));
      this.waiting.clear();
    };
  }

  call(msg: Record<string, unknown>): Promise<void> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }

  insertUsage(records: UsageRecord[]): Promise<void> {
    return this.call({ type: "insert", records });
  }

  async close(): Promise<void> {
    await this.call({ type: "close" }).catch(() => {});
    this.worker.terminate();
  }
}

/** Opens where usage batches go for this store. */
export async function openUsageSink(
  store: Store,
  url: string | undefined,
  dataDir: string,
): Promise<UsageSinkStore> {
  if (store.kind !== "libsql" || !isLocalFile(url)) {
    return {
      insertUsage: (r) => store.insertUsage(r),
      close: () => Promise.resolve(),
    };
  }
  const worker = new Worker(new URL("./usage_worker.ts", import.meta.url).href, { type: "module" });
  const sink = new WorkerSink(worker);
  try {
    await sink.call({ type: "open", url, dataDir });
  } catch (err) {
    worker.terminate();
    throw err;
  }
  return sink;
}
