import type { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Sink } from '../core/sink-contract.js';
import type { DlqWriter } from './dlq-writer.js';
import type { RetryPolicy } from './retry.js';
import type { Semaphore } from './semaphore.js';
import type { Decoded } from './sink-decode.js';
import type { SinkMetrics } from './sink-metrics.js';

/**
 * What settling one batch of one partition takes and gives (batch-delivery.ts, its fast way
 * encoded-delivery.ts and write-splitting.ts): the batch as the runner hands it over, the context
 * the runner provides, and the outcome it acts on.
 */

export interface DeliveryItem {
  offset: string;
  decoded: Decoded;
}

export interface PendingBatch {
  topic: string;
  partition: number;
  items: DeliveryItem[];
  /** Last item's offset + 1. */
  nextOffset: string;
}

export type DeliveryOutcome =
  | { kind: 'settled'; written: number; dlq: number; writeMs: number }
  | { kind: 'state-lost'; error: PipelineError }
  | { kind: 'abandoned' };

export interface DeliveryContext {
  sink: Sink;
  stage: string;
  dlq: DlqWriter;
  metrics: SinkMetrics;
  log: Logger;
  retryPolicy: RetryPolicy;
  writeLock: Semaphore;
  /** Issues the offset commit (asynchronously; the runner tracks and logs it). */
  commit(topic: string, partition: number, nextOffset: string): void;
  /** False once the partition is being revoked (or a stop's drain grace is over): stop retrying. */
  owned(): boolean;
  /** Aborted when a stop's drain grace is over: interrupts a retry's backoff sleep. */
  signal?: AbortSignal;
  onError(err: PipelineError): void;
  /** True for a record written before and read again after a state loss: not counted as freshness. */
  isReread?(offset: string): boolean;
}
