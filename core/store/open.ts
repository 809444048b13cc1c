/**
 * Opens the configured store: `postgres://` / `postgresql://` URLs go to PostgreSQL,
 * everything else (a `file:` URL, a bare path, `libsql://`, `http(s)://`, `ws(s)://`)
 * to libSQL. Without a URL the database is `<dataDir>/llmgw.db` (default `./data`).
 */
import { LibsqlStore } from "./libsql.ts";
import { PostgresStore } from "./postgres.ts";
import type { Store } from "./store.ts";

/** Options for {@link openStore}. */
export interface OpenStoreOptions {
  /** Directory of the default file database (default `./data`); created if missing. */
  dataDir?: string;
  /** PostgreSQL only: put the tables in this schema (created on migrate). */
  schema?: string;
  /** libSQL remote only: auth token (also accepted as `?authToken=` in the URL). */
  authToken?: string;
  /** Skip migrations (default false). */
  skipMigrations?: boolean;
}

/** Whether `url` selects the PostgreSQL store. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** The default libSQL URL for a data directory: `file:<dataDir>/llmgw.db`. */
export function defaultDatabaseUrl(dataDir = "./data"): string {
  return `file:${dataDir.replace(/[\\/]+$/, "")}/llmgw.db`;
}

/**
 * Opens the store for `url` (undefined or empty → the default file database) and
 * applies pending migrations. On a migration failure the store is closed and the
 * error rethrown.
 */
export async function openStore(url: string | undefined, opts: OpenStoreOptions = {}): Promise<Store> {
  const target = url && url.trim() !== "" ? url.trim() : defaultDatabaseUrl(opts.dataDir);
  const store: Store = isPostgresUrl(target)
    ? await PostgresStore.open(target, { schema: opts.schema })
    : await LibsqlStore.open(target, { authToken: opts.authToken });
  if (!opts.skipMigrations) {
    try {
      await store.migrate();
    } catch (err) {
      await store.close().catch(() => {});
      throw err;
    }
  }
  return store;
}
