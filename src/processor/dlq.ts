import type { PipelineError } from '../core/errors.js';
import type { DlqEntry } from '../core/types.js';

/** Where a consumed record came from (what its DLQ entry records). */
export interface SourceRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
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
    attempts: 1,
  };
}
