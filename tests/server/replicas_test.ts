/**
 * Two llmgw server processes (`deno run -A main.ts serve`) sharing one PostgreSQL
 * database (a fresh schema, through `?search_path=` in LLMGW_DATABASE_URL) and one
 * Redis: a key created through one is usable on the other, a per-key RPM limit holds
 * across both, a revocation on A (or by the CLI) is refused on B within 1 s (Redis
 * pub/sub), and the usage of both lands in the one database, flushed on SIGTERM.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import postgres from "postgres";
import { Redis } from "ioredis";
import { ignoreWithout, POSTGRES_URL, REDIS_URL, serviceAvailable } from "../services.ts";
import { startFakeOllama } from "../fakes/fake_ollama.ts";
import { startFakeOpenAI } from "../fakes/fake_openai.ts";
import { OPENROUTER_TEST_KEY } from "../harness.ts";
import { openStore } from "../../core/store/open.ts";
import {
  adminClient,
  ask,
  baseEnv,
  type CreatedKey,
  freePort,
  outcomes,
  ROOT,
  runCliJson,
  v1Client,
  waitFor,
} from "./e2e_helpers.ts";

const ADMIN_KEY = "sk-llmgw-replicatestadminkey000000000000000000000000";

interface Replica {
  name: string;
  url: string;
  child: Deno.ChildProcess;
  /** What the process wrote on stderr so far. */
  stderr(): string;
  /** SIGTERM, then the exit code (SIGKILL after 15 s). */
  stop(): Promise<number>;
}

function startReplica(name: string, env: Record<string, string>): Replica {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "serve", "--port", String(port), "--host", "127.0.0.1"],
    cwd: ROOT,
    clearEnv: true,
    env: { ...baseEnv(), ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let err = "";
  const decoder = new TextDecoder();
  const drain = async (s: ReadableStream<Uint8Array>, into: (t: string) => void) => {
    for await (const b of s) into(decoder.decode(b, { stream: true }));
  };
  const pumps = Promise.all([drain(child.stdout, (t) => err += t), drain(child.stderr, (t) => err += t)]);
  let stopped: Promise<number> | undefined;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    child,
    stderr: () => err,
    stop() {
      stopped ??= (async () => {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }, 15_000);
        const status = await child.status;
        clearTimeout(timer);
        await pumps;
        return status.code;
      })();
      return stopped;
    },
  };
}

async function healthy(r: Replica): Promise<boolean> {
  try {
    const res = await fetch(`${r.url}/health`);
    const body = await res.json();
    return res.status === 200 && body.store === "postgres" && body.limiter === "redis";
  } catch {
    return false;
  }
}

Deno.test({
  name: "two replicas share PostgreSQL and Redis: keys, a combined RPM limit, revocation < 1 s, usage",
  ignore: ignoreWithout("postgres") || ignoreWithout("redis"),
  async fn() {
    if (!await serviceAvailable("postgres") || !await serviceAvailable("redis")) return;
    const schema = `llmgw_replicas_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const admin = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
    await admin`CREATE SCHEMA ${admin(schema)}`;
    const dbUrl = new URL(POSTGRES_URL);
    dbUrl.searchParams.set("search_path", schema);
    const ollama = startFakeOllama();
    const openrouter = startFakeOpenAI({ openrouter: true, apiKey: OPENROUTER_TEST_KEY });
    const dataDir = await Deno.makeTempDir({ prefix: "llmgw-replicas-" });
    const env = {
      LLMGW_DATABASE_URL: dbUrl.href,
      LLMGW_REDIS_URL: REDIS_URL,
      LLMGW_ADMIN_KEY: ADMIN_KEY,
      LLMGW_DATA_DIR: dataDir,
      LLMGW_LOG_LEVEL: "warn",
      OLLAMA_BASE_URL: ollama.url,
      OPENROUTER_BASE_URL: openrouter.baseUrl,
      OPENROUTER_API_KEY: OPENROUTER_TEST_KEY,
    };
    const keyIds: string[] = [];
    let a: Replica | undefined;
    let b: Replica | undefined;
    try {
      a = startReplica("A", env);
      b = startReplica("B", env);
      const [ra, rb] = [a, b];
      await Promise.all(
        [ra, rb].map((r) =>
          waitFor(`replica ${r.name} healthy`, () => healthy(r), 30_000, 100).catch((e) => {
            throw new Error(`${e.message}\n${r.stderr()}`);
          })
        ),
      );
      const adminA = adminClient(ra.url, ADMIN_KEY);
      const adminB = adminClient(rb.url, ADMIN_KEY);
      const requestIds: string[] = [];
      const idOf = (x: unknown) => {
        const id = x instanceof OpenAI.APIError ? x.requestID : (x as { response: Response }).response.headers
          .get("x-request-id");
        assert.match(id ?? "", /^req_/);
        requestIds.push(id!);
      };

      // A key created through A works on B (and A), and B's admin API sees it.
      const k = await adminA.post<CreatedKey>("/admin/keys", { body: { name: "shared", rpm: 10 } });
      keyIds.push(k.id);
      idOf(await v1Client(rb.url, k.key).chat.completions.create(ask("llama3.2", "from b")).withResponse());
      idOf(await v1Client(ra.url, k.key).chat.completions.create(ask("llama3.2", "from a")).withResponse());
      assert.equal((await adminB.get<CreatedKey>(`/admin/keys/${k.id}`)).name, "shared");

      // One RPM limit across both: 2 used, 30 more at once (15 per replica) → exactly 8 more admitted.
      const results = await outcomes(
        Array.from(
          { length: 30 },
          (_, i) =>
            v1Client(i % 2 ? rb.url : ra.url, k.key).chat.completions.create(ask("llama3.2", `burst ${i}`))
              .withResponse(),
        ),
      );
      for (const r of results) idOf(r);
      const okCount = results.filter((r) => !(r instanceof Error)).length;
      const limited = results.filter((r) => r instanceof OpenAI.RateLimitError);
      assert.equal(okCount, 8, `admitted across both replicas: ${okCount}`);
      assert.equal(limited.length, 22);

      // Revocation on A is refused on B within 1 s, though B has the key cached.
      const r2 = await adminA.post<CreatedKey>("/admin/keys", { body: { name: "to-revoke" } });
      keyIds.push(r2.id);
      const onB = v1Client(rb.url, r2.key);
      idOf(await onB.chat.completions.create(ask("llama3.2")).withResponse());
      await adminA.delete(`/admin/keys/${r2.id}`);
      const tookMs = await waitFor(
        "revocation reaches B",
        async () => {
          const res = await fetch(`${rb.url}/v1/models`, { headers: { authorization: `Bearer ${r2.key}` } });
          await res.body?.cancel();
          return res.status === 401;
        },
        1000,
        10,
      );
      assert.ok(tookMs < 1000, `B refused the key after ${tookMs} ms`);
      const refused = await onB.chat.completions.create(ask("llama3.2")).then(() => null, (e) => e);
      assert.ok(refused instanceof OpenAI.AuthenticationError, `${refused}`);
      assert.match(refused.message, /revoked/);
      idOf(refused);

      // `llmgw keys revoke` (another process) reaches both replicas within 1 s too.
      const r3 = await adminB.post<CreatedKey>("/admin/keys", { body: { name: "cli-revoked" } });
      keyIds.push(r3.id);
      for (const r of [ra, rb]) {
        idOf(await v1Client(r.url, r3.key).chat.completions.create(ask("llama3.2")).withResponse());
      }
      const revoked = await runCliJson<{ revoked_at: string | null }>(
        ["keys", "revoke", r3.id, "--json"],
        env,
      );
      assert.ok(revoked.revoked_at);
      for (const r of [ra, rb]) {
        await waitFor(
          `CLI revocation reaches ${r.name}`,
          async () => {
            const res = await fetch(`${r.url}/v1/models`, { headers: { authorization: `Bearer ${r3.key}` } });
            await res.body?.cancel();
            return res.status === 401;
          },
          1000,
          10,
        );
      }

      // SIGTERM: both flush their usage and exit 0.
      const codes = await Promise.all([ra.stop(), rb.stop()]);
      assert.deepEqual(codes, [0, 0], `${ra.stderr()}\n${rb.stderr()}`);
      const store = await openStore(dbUrl.href);
      try {
        assert.equal(store.kind, "postgres");
        const rows = await store.listUsage({ limit: 10_000 });
        assert.equal(rows.length, requestIds.length);
        assert.deepEqual(new Set(rows.map((r) => r.requestId)), new Set(requestIds));
        const shared = rows.filter((r) => r.keyId === k.id);
        assert.equal(shared.length, 32);
        assert.equal(shared.filter((r) => r.status === 200).length, 10);
        assert.equal(shared.filter((r) => r.status === 429).length, 22);
        // The refused request is booked without a key (it did not authenticate).
        assert.equal(await store.countUsage({ keyId: r2.id }), 1);
        assert.equal(rows.filter((r) => r.keyId === null && r.status === 401).length, 1);
      } finally {
        await store.close();
      }
      // Nothing went to the default schema or to a libSQL file.
      await assert.rejects(Deno.stat(`${dataDir}/llmgw.db`));
    } finally {
      await Promise.all([a?.stop(), b?.stop()]);
      await Promise.all([ollama.close(), openrouter.close()]);
      await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`.catch(() => {});
      await admin.end({ timeout: 5 });
      const redis = new Redis(REDIS_URL);
      try {
        for (const id of keyIds) {
          const keys = await redis.keys(`llmgw:rl:{${id}}:*`);
          if (keys.length) await redis.del(...keys);
        }
      } finally {
        await redis.quit();
      }
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});
