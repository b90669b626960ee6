import type { DlqEntry } from './types.js';

/**
 * A DLQ entry must itself fit in a Kafka record (KAFKA_MESSAGE_MAX_BYTES), or its write fails —
 * and with it the processor's transaction, or the sink's batch, again on every retry. The original
 * value is base64 (4 bytes per 3), so an entry of a record near the limit would not fit: an entry
 * keeps the value whole when it fits, else its first bytes, flagged `value_truncated` with the
 * original size in `value_bytes`; the whole record stays at the entry's topic/partition/offset.
 * The reason text is capped too (it may quote a value).
 */

/** Room in an entry for everything but the value and the key: reason, stage, code, names, times. */
export const DLQ_ENTRY_HEADROOM_BYTES = 16 * 1024;
/** Longest reason kept (characters; JSON-escaped, at most 6 bytes each). */
export const DLQ_REASON_MAX_CHARS = 1000;

/** The most value bytes an entry keeps, for a record key of `keyBytes`, under `maxMessageBytes`. */
export function dlqValueLimit(maxMessageBytes: number, keyBytes: number): number {
  // The key is in the entry and is the DLQ record's key too.
  return Math.max(0, Math.floor(((maxMessageBytes - DLQ_ENTRY_HEADROOM_BYTES - 2 * keyBytes) * 3) / 4));
}

/** The value fields of an entry for `value`, capped to fit `maxMessageBytes` beside a key of `keyBytes`. */
export function dlqValueFields(
  value: Buffer | null,
  maxMessageBytes: number,
  keyBytes: number,
): Pick<DlqEntry, 'value_base64' | 'value_truncated' | 'value_bytes'> {
  if (value === null) return { value_base64: null };
  const limit = dlqValueLimit(maxMessageBytes, keyBytes);
  if (value.length <= limit) return { value_base64: value.toString('base64') };
  return {
    value_base64: value.subarray(0, limit).toString('base64'),
    value_truncated: true,
    value_bytes: value.length,
  };
}

/** The reason text, capped at DLQ_REASON_MAX_CHARS. */
export function dlqReason(message: string): string {
  return message.length <= DLQ_REASON_MAX_CHARS ? message : `${message.slice(0, DLQ_REASON_MAX_CHARS - 1)}…`;
}
