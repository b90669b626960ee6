import type { Config } from '../config/load.js';
import type { SinkFactory } from '../core/sink-contract.js';
import type { BatchingPolicy } from './batcher.js';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.js';
import type { MessageDecoder } from './sink-decode.js';

/** Knobs of one sink runner; every one has a default derived from the config and the factory. */
export interface SinkRunnerOptions {
  /** Topic to consume (default KAFKA_TOPIC_ENRICHED; the DLQ topic for a replay). */
  topic?: string;
  /** Consumer group (default `engage-sink-<name>.<KAFKA_CLIENT_ID>`). */
  groupId?: string;
  /** DLQ stage recorded for this runner's failures (default `sink:<name>`). */
  stage?: string;
  /** Overrides `factory.batching(config)` and the config defaults. */
  batching?: { maxRecords: number; maxWaitMs: number; paced?: boolean };
  /** Queued records per partition past which the partition is paused (default 2 × maxRecords, at least MIN_QUEUED_PER_PARTITION). */
  maxQueuedPerPartition?: number;
  /** Write retry policy (default the factory's `retryPolicy(config)` when it has one, else DEFAULT_RETRY). */
  retry?: RetryPolicy;
  /** How a consumed message becomes a record (default: an enriched event). */
  decoder?: MessageDecoder;
  /**
   * Concurrent `write` calls allowed on the sink (default the factory's `writeConcurrency(config)`
   * when it has one, else 1: writes are serialised). A partition never has more than one batch in
   * flight whatever this is: it bounds how many partitions write at once.
   */
  writeConcurrency?: number;
  /**
   * A bounded run (a DLQ replay): consume only offsets below these, per partition (a partition
   * missing from the map consumes nothing); a partition that reaches its end is paused.
   */
  endOffsets?: Map<number, string>;
  /**
   * Where a partition without a stored offset starts: 'sink' (default) = `sink.startPosition()`;
   * 'committed' = the group's committed offset, else the earliest (a DLQ replay).
   */
  fallbackStart?: 'sink' | 'committed';
  /** How often the high watermarks are refreshed for the lag gauge (default 5000 ms). */
  lagRefreshMs?: number;
}

export function sinkGroupId(config: Config, name: string): string {
  return `engage-sink-${name}.${config.KAFKA_CLIENT_ID}`;
}

/**
 * The default pause threshold's floor, in records per partition. Every resume re-fetches the
 * partition from the broker (a pause drops librdkafka's prefetch), so what is queued when it
 * resumes must outlast that round trip: with 2,000 (the external sink's 2 × 1,000) a single hot
 * partition paused five to six times a second and its drain spent half its CPU re-fetching; with
 * 8,192, a ~5 MB look-ahead of ~600-byte events, it drained twice as fast at half the CPU per
 * event (docs/benchmarks.md history, 2026-11-28).
 */
export const MIN_QUEUED_PER_PARTITION = 8192;

/** A batch's records when neither the sink nor BATCH_SIZE says. */
export const DEFAULT_BATCH_SIZE = 100;

/** Batch size and wait: options, else the factory's own, else BATCH_SIZE and PROCESSING_INTERVAL_SECONDS. */
export function resolveBatching(config: Config, factory: SinkFactory, opts: SinkRunnerOptions): BatchingPolicy {
  const base = opts.batching ??
    factory.batching?.(config) ?? {
      maxRecords: config.BATCH_SIZE ?? DEFAULT_BATCH_SIZE,
      maxWaitMs: Math.round(config.PROCESSING_INTERVAL_SECONDS * 1000),
    };
  const maxRecords = Math.max(1, Math.floor(base.maxRecords));
  const maxWaitMs = Math.max(0, base.maxWaitMs);
  const paced = base.paced === true;
  const maxQueued = Math.max(
    maxRecords,
    opts.maxQueuedPerPartition ?? Math.max(2 * maxRecords, MIN_QUEUED_PER_PARTITION),
  );
  return { maxRecords, maxWaitMs, maxQueued, paced };
}

export function resolveRetryPolicy(config: Config, factory: SinkFactory, opts: SinkRunnerOptions): RetryPolicy {
  return opts.retry ?? factory.retryPolicy?.(config) ?? DEFAULT_RETRY;
}

export function resolveWriteConcurrency(config: Config, factory: SinkFactory, opts: SinkRunnerOptions): number {
  return opts.writeConcurrency ?? factory.writeConcurrency?.(config) ?? 1;
}
