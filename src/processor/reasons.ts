import { PipelineError, type ErrorCode } from '../core/errors.js';

/**
 * Why the processor parks a record in the DLQ. Each reason is a stable token: it starts the
 * DLQ entry's `reason` text (`"NEGATIVE_DURATION: duration_ms is -5"`) and is kept in the error's
 * `details.reason`, so a reader can match on it; the entry's `code` is the PipelineError code.
 * docs/processor.md lists which input gets which reason and why.
 */
export type RejectReason =
  | 'UNDECODABLE'
  | 'INVALID_ENVELOPE'
  | 'MISSING_FIELD'
  | 'INVALID_VALUE'
  | 'NULL_CONTENT_ID'
  | 'UNKNOWN_EVENT_TYPE'
  | 'NEGATIVE_DURATION'
  | 'EVENT_TS_IN_FUTURE'
  | 'EVENT_TS_BEFORE_2000'
  | 'UNKNOWN_CONTENT'
  | 'EVENT_UPDATED'
  | 'EVENT_DELETED'
  /** The enriched event would exceed KAFKA_MESSAGE_MAX_BYTES (the CDC keeps events well below it). */
  | 'RECORD_TOO_LARGE';

const CODE_OF: Record<RejectReason, ErrorCode> = {
  UNDECODABLE: 'DECODE_FAILED',
  INVALID_ENVELOPE: 'DECODE_FAILED',
  MISSING_FIELD: 'MISSING_FIELD',
  INVALID_VALUE: 'INVALID_VALUE',
  NULL_CONTENT_ID: 'MISSING_FIELD',
  UNKNOWN_EVENT_TYPE: 'INVALID_VALUE',
  NEGATIVE_DURATION: 'INVALID_VALUE',
  EVENT_TS_IN_FUTURE: 'INVALID_VALUE',
  EVENT_TS_BEFORE_2000: 'INVALID_VALUE',
  UNKNOWN_CONTENT: 'UNKNOWN_CONTENT',
  EVENT_UPDATED: 'UNSUPPORTED_CHANGE',
  EVENT_DELETED: 'UNSUPPORTED_CHANGE',
  RECORD_TOO_LARGE: 'INVALID_VALUE',
};

/** A non-retriable PipelineError for a rejected record; the message starts with the reason token. */
export function rejection(reason: RejectReason, message: string, details: Record<string, unknown> = {}): PipelineError {
  return new PipelineError(CODE_OF[reason], `${reason}: ${message}`, {
    retriable: false,
    details: { reason, ...details },
  });
}

/** The reason token of a processor rejection (falls back to the error code for anything else). */
export function reasonOf(error: PipelineError): string {
  const reason = error.details?.reason;
  return typeof reason === 'string' ? reason : error.code;
}
