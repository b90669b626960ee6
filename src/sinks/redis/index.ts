import type { RegisteredSinkFactory } from '../../core/sink-contract.js';
import { REDIS_BATCH_RECORDS, REDIS_BATCH_WAIT_MS, REDIS_WRITE_CONCURRENCY } from './options.js';
import { RedisSink } from './redis-sink.js';

/**
 * Registration of the Redis sink (`engage sink redis`). Batches are small in time (100 ms) so the
 * window is fresh well within 1 s, and up to 5,000 records so a backlog drains at full speed (one
 * Lua script per partition batch). Up to REDIS_WRITE_CONCURRENCY partitions write at once (each
 * partition one batch at a time), so the sink builds one payload while Redis runs another.
 * See docs/redis.md.
 */
export const redisSinkFactory: RegisteredSinkFactory = {
  name: 'redis',
  /** Fresh within 5 s (the goal is a p99 of 1 s: the dashboard turns amber there). */
  operations: { order: 10, freshnessTargetSeconds: 5, runByDefault: () => true },
  batching: () => ({ maxRecords: REDIS_BATCH_RECORDS, maxWaitMs: REDIS_BATCH_WAIT_MS, paced: true }),
  writeConcurrency: () => REDIS_WRITE_CONCURRENCY,
  create: (ctx) => new RedisSink(ctx),
};

export { RedisSink } from './redis-sink.js';
export { redisSinkOptions, type RedisSinkOptions } from './options.js';
export { RedisKeys, windowStartMs } from './keys.js';
export {
  RedisReader,
  createRedisReader,
  type RedisClient,
  type RedisReaderOptions,
  type TopContentEntry,
  type ContentStats,
  type RecentEvent,
} from './read.js';
