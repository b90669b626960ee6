import type { SinkFactory } from '../contract.js';
import { REDIS_BATCH_RECORDS, REDIS_BATCH_WAIT_MS, REDIS_WRITE_CONCURRENCY } from './options.js';
import { RedisSink } from './redis-sink.js';

/**
 * Registration of the Redis sink (`engage sink redis`). Batches are small in time (100 ms) so the
 * window is fresh well within 1 s, and up to 5,000 records so a backlog drains at full speed (one
 * Lua script per partition batch). Up to REDIS_WRITE_CONCURRENCY partitions write at once (each
 * partition one batch at a time), so the sink builds one payload while Redis runs another.
 * See docs/redis.md.
 */
export const redisSinkFactory: SinkFactory & { writeConcurrency(): number } = {
  name: 'redis',
  batching: () => ({ maxRecords: REDIS_BATCH_RECORDS, maxWaitMs: REDIS_BATCH_WAIT_MS }),
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
