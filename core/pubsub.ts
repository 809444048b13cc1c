/**
 * A small invalidation bus (e.g. "key revoked") so every replica drops its caches.
 * `MemoryBus` delivers within the process (instances given one `MemoryHub` share it, like replicas
 * sharing one Redis); `RedisBus` uses Redis pub/sub with a separate subscriber
 * connection. Delivery is at-most-once: a replica that is disconnected misses messages,
 * so caches should also expire on their own.
 *
 * @module
 */

import { Redis } from "ioredis";

/** Publish/subscribe on named channels. */
export interface Bus {
  /** Sends `message` to every subscriber of `channel` (in every instance, this one included). */
  publish(channel: string, message: string): Promise<void>;
  /** Calls `fn` for each message on `channel`; resolves once the subscription is active. */
  subscribe(channel: string, fn: (msg: string) => void): Promise<void>;
  /** Drops this instance's subscriptions and connections. */
  close(): Promise<void>;
}

type Handler = (msg: string) => void;

function deliver(fns: Iterable<Handler>, msg: string): void {
  for (const fn of fns) {
    try {
      fn(msg);
    } catch (err) {
      console.error("pubsub handler failed:", err);
    }
  }
}

/** Subscriptions of one bus instance: channel → handlers. */
class Handlers {
  readonly map = new Map<string, Set<Handler>>();
  /** Adds `fn`; returns true when the channel is new for this instance. */
  add(channel: string, fn: Handler): boolean {
    const fns = this.map.get(channel);
    if (fns) {
      fns.add(fn);
      return false;
    }
    this.map.set(channel, new Set([fn]));
    return true;
  }
  emit(channel: string, msg: string): void {
    const fns = this.map.get(channel);
    if (fns) deliver([...fns], msg);
  }
}

/** What in-process buses share (as replicas share one Redis); pass one to several MemoryBus. */
export class MemoryHub {
  readonly members = new Set<MemoryBus>();
}

/** In-process {@link Bus}: every open `MemoryBus` on the same hub receives what any of them publishes. */
export class MemoryBus implements Bus {
  readonly #handlers = new Handlers();
  readonly #hub: MemoryHub;

  constructor(hub: MemoryHub = new MemoryHub()) {
    this.#hub = hub;
    hub.members.add(this);
  }

  publish(channel: string, message: string): Promise<void> {
    // Asynchronous like a network bus, so publishers never re-enter their own handlers.
    const hub = this.#hub.members;
    const targets = [...hub];
    queueMicrotask(() => {
      for (const bus of targets) if (hub.has(bus)) bus.#handlers.emit(channel, message);
    });
    return Promise.resolve();
  }

  subscribe(channel: string, fn: (msg: string) => void): Promise<void> {
    this.#handlers.add(channel, fn);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#hub.members.delete(this);
    this.#handlers.map.clear();
    return Promise.resolve();
  }
}

/** Options of {@link RedisBus}. */
export interface RedisBusOptions {
  /** Prefix of the Redis channel names, default `llmgw:bus:`. */
  prefix?: string;
}

/** {@link Bus} over Redis pub/sub (one publisher and one lazily opened subscriber connection). */
export class RedisBus implements Bus {
  readonly #url: string;
  readonly #prefix: string;
  readonly #pub: Redis;
  #sub: Redis | undefined;
  readonly #handlers = new Handlers();
  #closed = false;

  constructor(redisUrl: string, opts: RedisBusOptions = {}) {
    this.#url = redisUrl;
    this.#prefix = opts.prefix ?? "llmgw:bus:";
    this.#pub = RedisBus.#connect(redisUrl);
  }

  static #connect(url: string): Redis {
    const r = new Redis(url, { maxRetriesPerRequest: 2, connectTimeout: 5000 });
    // Failures surface through the rejected commands; ioredis reconnects (and re-subscribes).
    r.on("error", () => {});
    return r;
  }

  async publish(channel: string, message: string): Promise<void> {
    if (this.#closed) throw new Error("RedisBus is closed");
    await this.#pub.publish(this.#prefix + channel, message);
  }

  async subscribe(channel: string, fn: (msg: string) => void): Promise<void> {
    if (this.#closed) throw new Error("RedisBus is closed");
    if (!this.#sub) {
      this.#sub = RedisBus.#connect(this.#url);
      this.#sub.on("message", (ch: string, msg: string) => {
        if (ch.startsWith(this.#prefix)) this.#handlers.emit(ch.slice(this.#prefix.length), msg);
      });
    }
    if (this.#handlers.add(channel, fn)) await this.#sub.subscribe(this.#prefix + channel);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.map.clear();
    await Promise.all([this.#pub, this.#sub].map(async (r) => {
      if (!r) return;
      try {
        await r.quit();
      } catch {
        r.disconnect();
      }
    }));
  }
}

/** A {@link RedisBus} for `redisUrl`, or a {@link MemoryBus} without one. */
export function openBus(redisUrl?: string): Bus {
  return redisUrl ? new RedisBus(redisUrl) : new MemoryBus();
}
