import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config/load.js';
import { INIT_SQL } from '../../src/stack/stack.js';
import { deletePipelineTopics } from '../../src/kafka/admin.js';
import { formatPiiKeys } from '../../src/config/pii-keys.js';

/**
 * Isolation for tests that share the one real stack: each test gets its own database (init.sql
 * applied), its own topic names, slot, publication, Redis key prefix and DuckDB file, so test files
 * (and developers running them side by side) never see each other's data.
 */

export interface TestEnv {
  id: string;
  config: Config;
  /** The environment variables behind `config`: pass them to a child process (`engage <cmd>`). */
  env: NodeJS.ProcessEnv;
  /** Drops the database (and its replication slots) and deletes the test's topics (the shared
   *  broker would otherwise gain some 15 partitions per test, thousands per `npm test`). */
  cleanup(): Promise<void>;
}

export async function createTestEnv(overrides: Record<string, string> = {}): Promise<TestEnv> {
  const id = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const base = loadConfig();
  const dbName = `engage_${id}`;
  const adminUrl = withDatabase(base.databaseUrl, 'postgres');
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const databaseUrl = withDatabase(base.databaseUrl, dbName);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  await db.query(readFileSync(INIT_SQL, 'utf8'));
  await db.end();
  const tmp = mkdtempSync(path.join(os.tmpdir(), `engage-${id}-`));
  const env: NodeJS.ProcessEnv = {
    DATABASE_URL: databaseUrl,
    KAFKA_BOOTSTRAP_SERVERS: base.kafkaBrokers.join(','),
    REDIS_URL: base.redisUrl,
    KAFKA_TOPIC_ENGAGEMENT_EVENTS: `${id}.events`,
    KAFKA_TOPIC_CONTENT: `${id}.content`,
    KAFKA_TOPIC_ENRICHED: `${id}.enriched`,
    KAFKA_TOPIC_DLQ: `${id}.dlq`,
    KAFKA_TOPIC_CDC_POSITION: `${id}.cdc-position`,
    KAFKA_CLIENT_ID: `engage-${id}`,
    KAFKA_TOPIC_PARTITIONS: '3',
    CDC_SLOT_NAME: `slot_${id}`,
    CDC_PUBLICATION_NAME: `pub_${id}`,
    REDIS_KEY_PREFIX: `${id}:`,
    DUCKDB_PATH: path.join(tmp, 'warehouse.duckdb'),
    STACK_DIR: base.stackDir,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    // DATABASE_URL is set, so no development key is taken: the stack's (or a fixed one) is passed on.
    PII_KEYS: formatPiiKeys(base.piiKeys) || `test1:${'t'.repeat(43)}`,
    ...overrides,
  };
  const config = loadConfig(env);
  return {
    id,
    config,
    env,
    async cleanup() {
      await deletePipelineTopics(config).catch(() => undefined);
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [dbName],
        );
        await c.query(
          `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`,
          [dbName],
        );
        await c.query(`DROP DATABASE IF EXISTS ${dbName}`);
      } finally {
        await c.end();
        rmSync(tmp, { recursive: true, force: true });
      }
    },
  };
}

/**
 * `env`'s config with topics of a test's own (enriched, DLQ, events), named after `name`, so the
 * tests of one file sharing a TestEnv never see each other's records (`cleanup` deletes them too).
 */
export function ownTopics(env: TestEnv, name: string): Config {
  return {
    ...env.config,
    KAFKA_TOPIC_ENRICHED: `${env.id}.${name}.enriched`,
    KAFKA_TOPIC_DLQ: `${env.id}.${name}.dlq`,
    KAFKA_TOPIC_ENGAGEMENT_EVENTS: `${env.id}.${name}.events`,
  };
}

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}
