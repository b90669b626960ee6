import { after, before } from 'node:test';
import pg from 'pg';
import { createTestEnv, type TestEnv } from './env.js';

/**
 * The fixture of a test file (or suite) that queries a database of its own: registers a `before`
 * that makes a TestEnv (`overrides` as createTestEnv takes them) and connects a node-postgres
 * client to its database (`client` gives the client's config; default: the URL alone), then runs
 * `setup` (the file's own tables and rows), and an `after` that closes the client and drops the
 * database. `env` and `db` are read inside tests (a `before` of the file's own may run before this
 * one has finished: top-level hooks are not awaited one after the other, hence `setup`).
 */
export function useTestDatabase(
  opts: {
    overrides?: Record<string, string>;
    client?: (databaseUrl: string) => pg.ClientConfig;
    setup?: (db: pg.Client) => Promise<void>;
  } = {},
): { readonly env: TestEnv; readonly db: pg.Client } {
  let env: TestEnv | undefined;
  let db: pg.Client | undefined;
  before(async () => {
    env = await createTestEnv(opts.overrides);
    db = new pg.Client(opts.client?.(env.config.databaseUrl) ?? { connectionString: env.config.databaseUrl });
    await db.connect();
    await opts.setup?.(db);
  });
  after(async () => {
    await db?.end();
    await env?.cleanup();
  });
  return {
    get env(): TestEnv {
      if (!env) throw new Error('useTestDatabase: read env inside a test');
      return env;
    },
    get db(): pg.Client {
      if (!db) throw new Error('useTestDatabase: read db inside a test');
      return db;
    },
  };
}
