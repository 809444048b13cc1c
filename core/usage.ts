/**
 * Asynchronous, batched usage recording. `record()` only appends to an in-memory
 * queue; a timer (or a full batch) writes the queue to the store in the
 * background. Failed writes keep their records and are retried with exponential
 * backoff; when the queue is full, new records are dropped and counted.
 *
 * @example
 * ```ts
 * const usage = new UsageRecorder(store);
 * usage.record({ requestId, keyId, model, ... });
 * await usage.close(); // on shutdown: writes what is left
 * ```
 */
import type { Store, UsageRecord } from "./store/store.ts";

export type { UsageRecord };

/** Options for {@link UsageRecorder}. */
export interface UsageRecorderOptions {
  /** Write pending records at least this often (ms, default 250). */
  flushIntervalMs?: number;
  /** Records per write; reaching it triggers a write at once (default 200). */
  maxBatch?: number;
  /** Records kept in memory at most; more are dropped and counted (default 100 000). */
  maxBuffer?: number;
  /** First retry delay after a failed write (ms, default 500); doubles per failure. */
  retryBaseMs?: number;
  /** Longest retry delay (ms, default 30 000). */
  retryMaxMs?: number;
  /** How long `close()` keeps retrying before it gives up on what is left (ms, default 5000). */
  closeTimeoutMs?: number;
  /** Called on every failed write and when records are dropped (default: console.warn, rate-limited). */
  onError?: (message: string, err?: unknown) => void;
}

/** Counters of a {@link UsageRecorder}. */
export interface UsageRecorderStats {
  /** Records written to the store. */
  written: number;
  /** Records waiting to be written. */
  pending: number;
  /** Records lost: queue full, or still unwritten when `close()` gave up. */
  dropped: number;
  /** Failed write attempts. */
  failures: number;
}

function defaultOnError(): (message: string, err?: unknown) => void {
  let last = 0;
  return (message, err) => {
    const now = Date.now();
    if (now - last < 5000) return; // at most one warning per 5 s
    last = now;
    console.warn(
      `llmgw usage: ${message}${err === undefined ? "" : `: ${err instanceof Error ? err.message : err}`}`,
    );
  };
}

/** Batches usage records into `store.insertUsage` calls. See the module doc. */
export class UsageRecorder {
  readonly #store: Pick<Store, "insertUsage">;
  readonly #interval: number;
  readonly #maxBatch: number;
  readonly #maxBuffer: number;
  readonly #retryBase: number;
  readonly #retryMax: number;
  readonly #closeTimeout: number;
  readonly #onError: (message: string, err?: unknown) => void;

  /** Queue: `#items[#head..]` are pending; the front is removed only after a successful write. */
  #items: UsageRecord[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerDue = 0;
  #draining: Promise<void> | null = null;
  #backoffUntil = 0;
  #consecutiveFailures = 0;
  #closed = false;
  #written = 0;
  #dropped = 0;
  #failures = 0;
  #lastError: unknown = undefined;

  /** Creates a recorder writing to `store`; nothing runs until the first `record()`. */
  constructor(store: Pick<Store, "insertUsage">, opts: UsageRecorderOptions = {}) {
    this.#store = store;
    this.#interval = Math.max(1, opts.flushIntervalMs ?? 250);
    this.#maxBatch = Math.max(1, opts.maxBatch ?? 200);
    this.#maxBuffer = Math.max(1, opts.maxBuffer ?? 100_000);
    this.#retryBase = Math.max(1, opts.retryBaseMs ?? 500);
    this.#retryMax = Math.max(this.#retryBase, opts.retryMaxMs ?? 30_000);
    this.#closeTimeout = Math.max(0, opts.closeTimeoutMs ?? 5000);
    this.#onError = opts.onError ?? defaultOnError();
  }

  /** Records written so far. */
  get written(): number {
    return this.#written;
  }

  /** Records waiting to be written. */
  get pending(): number {
    return this.#items.length - this.#head;
  }

  /** Records lost (queue full, or unwritten when `close()` gave up). */
  get dropped(): number {
    return this.#dropped;
  }

  /** A snapshot of all counters. */
  stats(): UsageRecorderStats {
    return {
      written: this.#written,
      pending: this.pending,
      dropped: this.#dropped,
      failures: this.#failures,
    };
  }

  /**
   * Queues one record. Synchronous, O(1), never throws and never waits for the
   * database. After `close()` records are dropped (and counted).
   */
  record(r: UsageRecord): void {
    try {
      if (this.#closed || this.pending >= this.#maxBuffer) {
        this.#dropped++;
        this.#onError(
          this.#closed
            ? "record() after close(); dropped"
            : `queue full (${this.#maxBuffer}); records dropped`,
        );
        return;
      }
      this.#items.push(r);
      if (this.pending >= this.#maxBatch) this.#schedule(0);
      else this.#schedule(this.#interval);
    } catch {
      // record() must never throw into the request path.
    }
  }

  /**
   * Writes everything queued so far. Rejects with the store's error when a write
   * fails (the records stay queued and are retried later).
   */
  async flush(): Promise<void> {
    this.#clearTimer();
    while (this.pending > 0) {
      const failures = this.#failures;
      const written = this.#written;
      await this.#drain();
      if (this.pending > 0 && (this.#failures !== failures || this.#written === written)) {
        throw this.#lastError ?? new Error("usage write failed");
      }
    }
  }

  /**
   * Stops the timer and writes everything left, retrying for up to `closeTimeoutMs`.
   * Records still unwritten then are counted as dropped. Never throws.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearTimer();
    const deadline = Date.now() + this.#closeTimeout;
    let delay = Math.min(50, this.#retryBase);
    while (this.pending > 0) {
      try {
        await this.flush();
      } catch {
        if (Date.now() + delay > deadline) break;
        await new Promise<void>((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, this.#retryMax);
      }
    }
    if (this.pending > 0) {
      const lost = this.pending;
      this.#dropped += lost;
      this.#items = [];
      this.#head = 0;
      this.#onError(`close(): ${lost} records could not be written and were dropped`, this.#lastError);
    }
    this.#clearTimer();
  }

  /** Arms the timer to fire within `delay` ms (earlier arming wins), respecting backoff. */
  #schedule(delay: number): void {
    if (this.#closed || this.#draining) return; // a running drain re-schedules when done
    const due = Math.max(Date.now() + delay, this.#backoffUntil);
    if (this.#timer !== undefined) {
      if (this.#timerDue <= due) return;
      clearTimeout(this.#timer);
    }
    this.#timerDue = due;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.#drain().catch(() => {});
    }, Math.max(0, due - Date.now()));
    // A background flusher should not keep the process alive; close() flushes on shutdown.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Writes batches until the queue is empty or a write fails. Never runs twice at once. */
  #drain(): Promise<void> {
    // `.finally` runs asynchronously, so it clears `#draining` only after it was set,
    // even when the loop finishes synchronously (e.g. a store that throws at once).
    this.#draining ??= this.#writeAll().finally(() => {
      this.#draining = null;
      if (this.pending > 0) this.#schedule(this.pending >= this.#maxBatch ? 0 : this.#interval);
    });
    return this.#draining;
  }

  async #writeAll(): Promise<void> {
    while (this.pending > 0) {
      const batch = this.#items.slice(this.#head, this.#head + this.#maxBatch);
      try {
        await this.#store.insertUsage(batch);
      } catch (err) {
        this.#failures++;
        this.#consecutiveFailures++;
        this.#lastError = err;
        const backoff = Math.min(this.#retryMax, this.#retryBase * 2 ** (this.#consecutiveFailures - 1));
        this.#backoffUntil = Date.now() + backoff;
        this.#onError(`writing ${batch.length} usage records failed; retrying in ${backoff} ms`, err);
        return;
      }
      this.#consecutiveFailures = 0;
      this.#backoffUntil = 0;
      this.#written += batch.length;
      this.#head += batch.length;
      this.#compact();
    }
  }

  /** Drops written records from the front of the array once they are the majority. */
  #compact(): void {
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
