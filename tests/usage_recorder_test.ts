import assert from "node:assert/strict";
import { LibsqlStore } from "../core/store/libsql.ts";
import type { Store, UsageRecord } from "../core/store/store.ts";
import { UsageRecorder } from "../core/usage.ts";

const quiet = { onError: () => {} };

/** A migrated libSQL store in a temporary directory; removed by `dispose`. */
async function tempStore(): Promise<{ store: Store; dispose: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "llmgw-usage-" });
  const store = await LibsqlStore.open(`file:${dir}/usage.db`);
  await store.migrate();
  return {
    store,
    dispose: async () => {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Wraps a real store: records batch sizes and fails the first `failFirst` writes. */
function wrap(store: Store, failFirst = 0) {
  const batches: number[] = [];
  let calls = 0;
  return {
    batches,
    get calls() {
      return calls;
    },
    insertUsage(records: UsageRecord[]): Promise<void> {
      calls++;
      if (calls <= failFirst) return Promise.reject(new Error(`write ${calls} failed`));
      batches.push(records.length);
      return store.insertUsage(records);
    },
  };
}

function usage(i: number): UsageRecord {
  return {
    requestId: `req_${i}`,
    keyId: "key_test",
    model: "m",
    provider: "p",
    upstreamModel: "m-1",
    promptTokens: 1,
    completionTokens: 2,
    totalTokens: 3,
    costUsd: 0.001,
    latencyMs: 5,
    ttftMs: null,
    status: 200,
    streamed: false,
    errorCode: null,
    cancelled: false,
    createdAt: new Date(1_700_000_000_000 + i),
  };
}

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting for condition");
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("UsageRecorder writes N records as N rows in the background", async () => {
  const { store, dispose } = await tempStore();
  const rec = new UsageRecorder(store, { flushIntervalMs: 20, maxBatch: 200, ...quiet });
  try {
    const n = 1234;
    for (let i = 0; i < n; i++) rec.record(usage(i));
    await until(() => rec.written === n);
    assert.equal(await store.countUsage(), n);
    assert.deepEqual(rec.stats(), { written: n, pending: 0, dropped: 0, failures: 0 });
    const ids = new Set((await store.listUsage({ limit: n })).map((u) => u.requestId));
    assert.equal(ids.size, n);
  } finally {
    await rec.close();
    await dispose();
  }
});

Deno.test("UsageRecorder.record is synchronous and leaves the write for later", async () => {
  const { store, dispose } = await tempStore();
  const spy = wrap(store);
  const rec = new UsageRecorder(spy, { flushIntervalMs: 60_000, ...quiet });
  try {
    const ret: unknown = rec.record(usage(1));
    assert.equal(ret, undefined);
    assert.equal(spy.calls, 0);
    assert.equal(rec.pending, 1);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(spy.calls, 0); // below the batch size and before the interval
  } finally {
    await rec.close();
    await dispose();
  }
  assert.equal(spy.calls, 1);
});

Deno.test("UsageRecorder flushes everything on close", async () => {
  const { store, dispose } = await tempStore();
  const rec = new UsageRecorder(store, { flushIntervalMs: 60_000, ...quiet });
  try {
    for (let i = 0; i < 37; i++) rec.record(usage(i));
    assert.equal(rec.pending, 37);
    await rec.close();
    assert.equal(await store.countUsage(), 37);
    assert.equal(rec.written, 37);
    assert.equal(rec.pending, 0);
    rec.record(usage(99)); // after close: dropped, not thrown
    assert.equal(rec.dropped, 1);
  } finally {
    await rec.close();
    await dispose();
  }
});

Deno.test("UsageRecorder writes as soon as a batch is full, in batches of maxBatch", async () => {
  const { store, dispose } = await tempStore();
  const spy = wrap(store);
  const rec = new UsageRecorder(spy, { flushIntervalMs: 60_000, maxBatch: 10, ...quiet });
  try {
    for (let i = 0; i < 25; i++) rec.record(usage(i));
    await until(() => rec.written === 25); // long before the 60 s interval
    assert.deepEqual(spy.batches, [10, 10, 5]);
    assert.equal(await store.countUsage(), 25);
  } finally {
    await rec.close();
    await dispose();
  }
});

Deno.test("UsageRecorder.flush writes pending records on demand", async () => {
  const { store, dispose } = await tempStore();
  const rec = new UsageRecorder(store, { flushIntervalMs: 60_000, ...quiet });
  try {
    for (let i = 0; i < 3; i++) rec.record(usage(i));
    await rec.flush();
    assert.equal(await store.countUsage(), 3);
    await rec.flush(); // nothing to do
  } finally {
    await rec.close();
    await dispose();
  }
});

Deno.test("UsageRecorder retries a failed write and loses nothing", async () => {
  const { store, dispose } = await tempStore();
  const spy = wrap(store, 1);
  const errors: string[] = [];
  const rec = new UsageRecorder(spy, {
    flushIntervalMs: 10,
    retryBaseMs: 20,
    onError: (m) => errors.push(m),
  });
  try {
    for (let i = 0; i < 50; i++) rec.record(usage(i));
    await until(() => rec.written === 50);
    assert.equal(rec.stats().failures, 1);
    assert.equal(errors.length, 1);
    assert.equal(await store.countUsage(), 50);
    assert.equal(rec.dropped, 0);
  } finally {
    await rec.close();
    await dispose();
  }
});

Deno.test("UsageRecorder.flush rejects on a failed write and keeps the records", async () => {
  const { store, dispose } = await tempStore();
  const spy = wrap(store, 1);
  const rec = new UsageRecorder(spy, { flushIntervalMs: 60_000, retryBaseMs: 60_000, ...quiet });
  try {
    rec.record(usage(1));
    await assert.rejects(() => rec.flush(), /write 1 failed/);
    assert.equal(rec.pending, 1);
    await rec.flush();
    assert.equal(rec.written, 1);
    assert.equal(await store.countUsage(), 1);
  } finally {
    await rec.close();
    await dispose();
  }
});

Deno.test("UsageRecorder caps its queue and counts dropped records", async () => {
  const failing = { insertUsage: () => Promise.reject(new Error("db down")) };
  const rec = new UsageRecorder(failing, {
    flushIntervalMs: 60_000,
    maxBatch: 100,
    maxBuffer: 10,
    closeTimeoutMs: 30,
    ...quiet,
  });
  for (let i = 0; i < 15; i++) rec.record(usage(i));
  assert.equal(rec.pending, 10);
  assert.equal(rec.dropped, 5);
  await rec.close(); // gives up after closeTimeoutMs, never throws
  assert.deepEqual({ ...rec.stats(), failures: 0 }, { written: 0, pending: 0, dropped: 15, failures: 0 });
  assert.ok(rec.stats().failures >= 1);
});

Deno.test("UsageRecorder.record never throws, even when the store throws synchronously", async () => {
  const throwing = {
    insertUsage: (): Promise<void> => {
      throw new Error("sync boom");
    },
  };
  const rec = new UsageRecorder(throwing, { flushIntervalMs: 1, maxBatch: 1, closeTimeoutMs: 0, ...quiet });
  for (let i = 0; i < 5; i++) rec.record(usage(i));
  await new Promise((r) => setTimeout(r, 20));
  await rec.close();
  assert.equal(rec.written, 0);
  assert.equal(rec.dropped, 5);
});
