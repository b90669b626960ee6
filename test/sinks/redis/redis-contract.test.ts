import { pino } from 'pino';
import type { EnrichedEvent } from '../../../src/core/types.js';
import { REDIS_WRITE_CONCURRENCY } from '../../../src/sinks/redis/options.js';
import { RedisReader } from '../../../src/sinks/redis/read.js';
import { RedisSink } from '../../../src/sinks/redis/redis-sink.js';
import type { TestEnv } from '../../helpers/env.js';
import { sinkContractSuite, type MakeSink } from '../contract-suite.js';
import { adminClient, wipe } from './redis-fixtures.js';

/**
 * The shared sink contract (test/sinks/contract-suite.ts) for the Redis sink on the real stack.
 * Storage = the env's REDIS_KEY_PREFIX; `count` is the window's event count (the suite's events
 * are a second old, well inside the window), so anything counted twice would show.
 */

const makeRedisSink: MakeSink = async (env: TestEnv) => {
  const sink = new RedisSink({ config: env.config, log: pino({ level: 'silent' }) });
  const client = await adminClient(env.config);
  const reader = new RedisReader(client, {
    prefix: env.config.REDIS_KEY_PREFIX,
    windowMinutes: env.config.REDIS_AGGREGATION_WINDOW_MINUTES,
    cacheMs: 0,
  });
  return {
    sink,
    count: () => reader.windowCount(),
    async teardown() {
      await wipe(client, env.config.REDIS_KEY_PREFIX);
      await client.close();
    },
  };
};

/** A record the Redis sink's `check` rejects (it cannot place it in a minute). */
const poison = (e: EnrichedEvent): EnrichedEvent => ({ ...e, event_ts: 'not a timestamp' });

sinkContractSuite('redis (Lua, offsets with the aggregates)', makeRedisSink, {
  poison,
  writeConcurrency: REDIS_WRITE_CONCURRENCY,
});
