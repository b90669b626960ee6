import { isUtf8 } from 'node:buffer';
import { dlqReason, dlqValueFields } from '../core/dlq-size.js';
import type { PipelineError } from '../core/errors.js';
import type { DlqEntry } from '../core/types.js';
import { DEFAULT_MESSAGE_MAX_BYTES } from '../kafka/client.js';

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

/** The key as text, or its bytes in base64 when it is not text (an Avro key), so a replay sends the same bytes. */
export function keyFields(key: Buffer | null): Pick<DlqEntry, 'key' | 'key_base64'> {
  if (key === null) return { key: null };
  if (key[0] === 0 || !isUtf8(key)) return { key: null, key_base64: key.toString('base64') };
  return { key: key.toString('utf8') };
}

/**
 * The DLQ entry of a record the processor rejected (pure). `reason` starts with the reason token.
 * It fits in a record of `maxMessageBytes` (KAFKA_MESSAGE_MAX_BYTES): a value too large for that is
 * kept as a prefix, flagged (src/core/dlq-size.ts).
 */
export function processorDlqEntry(
  record: SourceRecord,
  error: PipelineError,
  failedAtMs: number,
  maxMessageBytes = DEFAULT_MESSAGE_MAX_BYTES,
): DlqEntry {
  return {
    reason: dlqReason(error.message),
    code: error.code,
    stage: 'processor',
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    ...keyFields(record.key),
    ...dlqValueFields(record.value, maxMessageBytes, record.key?.length ?? 0),
    failed_at: new Date(failedAtMs).toISOString(),
    attempts: record.priorAttempts + 1,
  };
}
