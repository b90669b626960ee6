import type { SinkFactory } from '../contract.js';
import { REDIS_BATCH_RECORDS, REDIS_BATCH_WAIT_MS } from './options.js';
import { RedisSink } from './redis-sink.js';

/**
 * Registration of the Redis sink (`engage sink redis`). Batches are small in time (100 ms) so the
 * window is fresh well within 1 s, and up to 5,000 records so a backlog drains at full speed (one
 * Lua script per partition batch). See docs/redis.md.
 */
export const redisSinkFactory: SinkFactory = {
  name: 'redis',
  batching: () => ({ maxRecords: REDIS_BATCH_RECORDS, maxWaitMs: REDIS_BATCH_WAIT_MS }),
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
