import type { Config } from '../../config/load.js';
import type { RetryPolicy } from '../../runtime/retry.js';
import type { RegisteredSinkFactory } from '../../core/sink-contract.js';
import { ExternalSink } from './external-sink.js';

/**
 * Registration of the external-system sink (`engage sink external`). Batches are paced by what a
 * POST costs (sent about one request's time after the previous one returned) and flushed after at
 * most 500 ms, so delivery stays well within 30 s while the system is up, and
 * grow up to 1,000 events under load, so throughput does not hinge on the per-request round trip.
 */

export const EXTERNAL_BATCH_RECORDS = 1000;
export const EXTERNAL_BATCH_WAIT_MS = 500;
/**
 * Batches (of different partitions) in flight at once: the sink serialises the next batch while
 * the system parses the last. The system dedupes, so concurrency cannot double count.
 */
export const EXTERNAL_WRITE_CONCURRENCY = 2;

/**
 * The retry policy the runtime should use for this sink: no bound on attempts (an outage of the
 * system is waited out, src/runtime/write-splitting.ts), exponential backoff with full jitter
 * from 500 ms up to 30 s. A failure's `details.retryAfterMs`
 * (Retry-After, or an open circuit's remaining cool-down) is the minimum wait before the next
 * attempt, capped by `maxMs`.
 */
export function externalRetryPolicy(): RetryPolicy {
  return { attempts: Number.MAX_SAFE_INTEGER, baseMs: 500, maxMs: 30000, jitter: 'full' };
}

/** What the runtime's `retry({ requestedDelayMs })` reads from an error of this sink. */
export { requestedDelayMs } from '../../runtime/retry.js';

export const externalSinkFactory: RegisteredSinkFactory = {
  name: 'external',
  /** Delivered within 30 s; `engage run` runs it when it has a system to post to. */
  operations: {
    order: 30,
    freshnessTargetSeconds: 30,
    runByDefault: () => true,
    runEnv: (config: Config, { receiverUrl }) => {
      const url = config.EXTERNAL_API_URL ?? receiverUrl;
      return url === undefined ? null : { EXTERNAL_API_URL: url };
    },
  },
  dedupesByEventId: true,
  batching: () => ({ maxRecords: EXTERNAL_BATCH_RECORDS, maxWaitMs: EXTERNAL_BATCH_WAIT_MS, paced: true }),
  writeConcurrency: () => EXTERNAL_WRITE_CONCURRENCY,
  create: (ctx) => new ExternalSink(ctx),
  retryPolicy: externalRetryPolicy,
};

export {
  ExternalSink,
  externalSinkStatus,
  type ExternalSinkOptions,
  type ExternalSinkStatus,
} from './external-sink.js';
export { pseudonymiseUserId, pseudonymiseEvent } from './pseudonymise.js';
export { idempotencyKey, encodeBatch, type WireBatch } from './wire-format.js';
