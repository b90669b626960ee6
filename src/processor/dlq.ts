import type { PipelineError } from '../core/errors.js';
import type { DlqEntry } from '../core/types.js';

/**
 * The header `engage dlq replay --stage processor` puts on a record it re-sends: the attempts its
 * DLQ entry had, so a record the processor rejects again is parked with attempts + 1.
 */
export const DLQ_ATTEMPTS_HEADER = 'engage-dlq-attempts';

/** Where a consumed record came from (what its DLQ entry records). */
export interface SourceRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** Attempts already recorded for it (a replayed record's DLQ_ATTEMPTS_HEADER; 0 otherwise). */
  priorAttempts: number;
}

/** The attempts a replayed record carries in its headers (librdkafka's array of one-key objects); 0 when none. */
export function priorAttempts(headers: ReadonlyArray<Readonly<Record<string, string | Buffer>>> | undefined): number {
  if (headers === undefined) return 0;
  for (const h of headers) {
    const v = h[DLQ_ATTEMPTS_HEADER];
    if (v === undefined) continue;
    const n = Number(v.toString());
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  }
  return 0;
}

/** The DLQ entry of a record the processor rejected (pure). `reason` starts with the reason token. */
export function processorDlqEntry(record: SourceRecord, error: PipelineError, failedAtMs: number): DlqEntry {
  return {
    reason: error.message,
    code: error.code,
    stage: 'processor',
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    key: record.key === null ? null : record.key.toString('utf8'),
    value_base64: record.value === null ? null : record.value.toString('base64'),
    failed_at: new Date(failedAtMs).toISOString(),
    attempts: record.priorAttempts + 1,
  };
}
