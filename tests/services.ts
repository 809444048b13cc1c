/**
 * Test helper for the external services (PostgreSQL, Redis) that the scaled-out
 * paths need. With `LLMGW_TEST_SERVICES=required` (CI) a missing service fails the
 * test; otherwise the test is skipped with a clear reason.
 */

export const POSTGRES_URL = Deno.env.get("LLMGW_TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = Deno.env.get("LLMGW_TEST_REDIS_URL") ?? "redis://127.0.0.1:6379";

const required = Deno.env.get("LLMGW_TEST_SERVICES") === "required";

async function tcpOpen(host: string, port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: host, port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

const cache = new Map<string, Promise<boolean>>();

function reachable(url: string, defaultPort: number): Promise<boolean> {
  let hit = cache.get(url);
  if (!hit) {
    const u = new URL(url);
    hit = tcpOpen(u.hostname || "127.0.0.1", Number(u.port || defaultPort));
    cache.set(url, hit);
  }
  return hit;
}

/**
 * Resolves to true when the service answers. When it does not: throws under
 * `LLMGW_TEST_SERVICES=required`, else logs why and resolves to false (skip).
 */
export async function serviceAvailable(name: "postgres" | "redis"): Promise<boolean> {
  const ok = name === "postgres" ? await reachable(POSTGRES_URL, 5432) : await reachable(REDIS_URL, 6379);
  if (ok) return true;
  const where = name === "postgres" ? POSTGRES_URL : REDIS_URL;
  if (required) {
    throw new Error(`${name} is required (LLMGW_TEST_SERVICES=required) but does not answer at ${where}`);
  }
  console.warn(
    `skipping: ${name} does not answer at ${where} (set LLMGW_TEST_SERVICES=required to fail instead)`,
  );
  return false;
}

/** Whether a service is reachable, probed once at module load (for `ignore:`). */
export const haveServices = {
  postgres: await reachable(POSTGRES_URL, 5432),
  redis: await reachable(REDIS_URL, 6379),
};

/**
 * `ignore` value for a Deno.test needing `name`: ignored when missing, unless required
 * (then the test runs and fails through `serviceAvailable`).
 */
export function ignoreWithout(name: "postgres" | "redis"): boolean {
  if (haveServices[name] || required) return false;
  console.warn(`skipping ${name} tests: not reachable (set LLMGW_TEST_SERVICES=required to fail instead)`);
  return true;
}
