import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { type Bus, MemoryBus, MemoryHub, openBus, RedisBus } from "../core/pubsub.ts";
import { ignoreWithout, REDIS_URL, serviceAvailable } from "./services.ts";

/** Resolves with the first `n` messages `bus` gets on `channel`, or rejects after 1 s. */
async function collect(bus: Bus, channel: string, n: number): Promise<() => Promise<string[]>> {
  const got: string[] = [];
  let done: () => void = () => {};
  const all = new Promise<void>((res) => done = res);
  await bus.subscribe(channel, (m) => {
    got.push(m);
    if (got.length === n) done();
  });
  return async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timed out, got ${JSON.stringify(got)}`)), 1000);
    });
    try {
      await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return got;
  };
}

async function crossInstance(a: Bus, b: Bus): Promise<void> {
  const channel = `revoke-${crypto.randomUUID()}`;
  const onB = await collect(b, channel, 2);
  const onA = await collect(a, channel, 2);
  await a.subscribe(`${channel}-other`, () => {
    throw new Error("wrong channel delivered");
  });
  await a.publish(channel, "key_1");
  await b.publish(channel, "key_2");
  assertEquals(await onB(), ["key_1", "key_2"]);
  assertEquals(await onA(), ["key_1", "key_2"]);
}

Deno.test("MemoryBus delivers across instances", async () => {
  const hub = new MemoryHub();
  const a = new MemoryBus(hub);
  const b = new MemoryBus(hub);
  try {
    await crossInstance(a, b);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("MemoryBus: a closed instance gets nothing; a throwing handler does not stop others", async () => {
  const hub = new MemoryHub();
  const a = new MemoryBus(hub);
  const b = new MemoryBus(hub);
  const got: string[] = [];
  await b.subscribe("c", (m) => got.push(`b:${m}`));
  await a.subscribe("c", () => {
    throw new Error("boom");
  });
  await a.subscribe("c", (m) => got.push(`a:${m}`));
  const error = console.error;
  console.error = () => {};
  try {
    await a.publish("c", "1");
    await new Promise((r) => setTimeout(r, 0));
    await b.close();
    await a.publish("c", "2");
    await new Promise((r) => setTimeout(r, 0));
  } finally {
    console.error = error;
    await a.close();
  }
  assertEquals(got.sort(), ["a:1", "a:2", "b:1"]);
});

Deno.test({
  name: "RedisBus delivers across instances (two connections each)",
  ignore: ignoreWithout("redis"),
  async fn() {
    if (!await serviceAvailable("redis")) return;
    const prefix = `llmgw:test:bus:${crypto.randomUUID()}:`;
    const a = new RedisBus(REDIS_URL, { prefix });
    const b = new RedisBus(REDIS_URL, { prefix });
    try {
      await crossInstance(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  },
});

Deno.test("openBus picks the backend", async () => {
  const m = openBus();
  assertEquals(m instanceof MemoryBus, true);
  await m.close();
  if (ignoreWithout("redis")) return;
  const r = openBus(REDIS_URL);
  assertEquals(r instanceof RedisBus, true);
  await r.close();
});
