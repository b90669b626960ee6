import os from 'node:os';
import pg from 'pg';
import { createClient } from 'redis';
import type { Registry } from 'prom-client';
import type { Config } from '../config/load.js';
import { registry } from '../core/metrics.js';
import { kafkaReady } from '../kafka/admin.js';
import { RedisReader } from '../sinks/redis/read.js';
import type { PgQueryable } from './health/checks.js';
import type { HeartbeatRedis } from './heartbeats.js';

/**
 * What the API reads from. `buildApi` takes these ready-made (tests pass their own, pointed at an
 * isolated environment); `createApiDeps` builds the real ones from the configuration, each with
 * short timeouts so a dead service makes /health answer "unreachable" quickly instead of hanging.
 */

export interface ApiRedis extends HeartbeatRedis {
  ping(): Promise<string>;
}

export interface ApiDeps {
  reader: RedisReader;
  /** For heartbeats and PING; must fail fast while Redis is down (no offline queue). */
  redis: ApiRedis;
  db: PgQueryable;
  kafkaReady(): Promise<boolean>;
  /** This process's heartbeat instance (`<host>-<pid>`): its own heartbeat is replaced by its live registry. */
  instance: string;
  /** This process's registry (src/core/metrics.ts), served live. */
  processRegistry: Registry;
}

export interface OwnedDeps {
  deps: ApiDeps;
  /** Closes every client it opened. */
  close(): Promise<void>;
}

export function processInstance(): string {
  return `${os.hostname()}-${process.pid}`;
}

/** Real clients for `config`. Waits up to 2 s for Redis, never fails: a service down is what the probes report. */
export async function createApiDeps(config: Config): Promise<OwnedDeps> {
  const redis = createClient({
    url: config.redisUrl,
    disableOfflineQueue: true,
    socket: { connectTimeout: 2000, reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 2000) },
  });
  redis.on('error', () => undefined);
  // Connect in the background (reconnecting for ever): the API starts, and reports Redis down,
  // even when Redis is away; commands fail at once while it is not ready.
  const ready = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2000);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  void redis.connect().catch(() => undefined);
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: 2,
    connectionTimeoutMillis: 2000,
    query_timeout: 2000,
    idleTimeoutMillis: 30000,
    application_name: 'engage-api',
  });
  pool.on('error', () => undefined);
  // The reader shares the connection: one socket per API process.
  const reader = new RedisReader(redis, {
    prefix: config.REDIS_KEY_PREFIX,
    windowMinutes: config.REDIS_AGGREGATION_WINDOW_MINUTES,
  });
  await ready;
  const deps: ApiDeps = {
    reader,
    redis: {
      ping: () => redis.ping(),
      scanIterator: (options) => redis.scanIterator(options),
      mGet: (keys) => redis.mGet(keys),
    },
    db: { query: (text, values) => pool.query(text, values) },
    kafkaReady: () => kafkaReady(config),
    instance: processInstance(),
    processRegistry: registry,
  };
  return {
    deps,
    async close() {
      if (redis.isReady) await redis.close().catch(() => redis.destroy());
      else if (redis.isOpen) redis.destroy();
      await pool.end().catch(() => undefined);
    },
  };
}
