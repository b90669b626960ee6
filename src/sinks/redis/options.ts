import type { Config } from '../../config/load.js';

/**
 * The Redis sink's options, derived from the validated config (REDIS_* variables) with a few
 * internal knobs that tests and benchmarks override. Nothing here reads the environment.
 */

/** Runtime batching for the Redis sink: paced by what writes cost (a few ms at low rates), so
 *  aggregates are visible about one write after a record arrives; 100 ms at most. */
export const REDIS_BATCH_RECORDS = 5000;
export const REDIS_BATCH_WAIT_MS = 100;
/**
 * Partition batches written at once (each partition still one at a time, offsets stored in the
 * same script, so exactly-once holds): one in flight halves the rate (bench/redis-sink.bench.ts).
 */
export const REDIS_WRITE_CONCURRENCY = 4;

/** Seconds a minute bucket outlives the last window that can read it (covers clock skew). */
export const DEFAULT_MARGIN_SECONDS = 120;

/** How long (ms) a cached top-content union is served before being recomputed. */
export const DEFAULT_TOP_CACHE_MS = 200;

export interface RedisSinkOptions {
  url: string;
  prefix: string;
  windowMinutes: number;
  recentEvents: number;
  marginSeconds: number;
  /**
   * Dedupe by event id within the window (default true). Turning it off is for measuring its cost
   * in the benchmark only: without it a backfill re-sending events counts them twice.
   */
  dedupe: boolean;
  /** The clock deciding which minutes are in the window (tests pin it). */
  now: () => number;
}

export function redisSinkOptions(config: Config, overrides: Partial<RedisSinkOptions> = {}): RedisSinkOptions {
  return {
    url: config.redisUrl,
    prefix: config.REDIS_KEY_PREFIX,
    windowMinutes: config.REDIS_AGGREGATION_WINDOW_MINUTES,
    recentEvents: config.REDIS_RECENT_EVENTS,
    marginSeconds: DEFAULT_MARGIN_SECONDS,
    dedupe: true,
    now: Date.now,
    ...overrides,
  };
}
