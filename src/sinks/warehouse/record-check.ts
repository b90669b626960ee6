import { PipelineError } from '../../core/errors.js';
import { CONTENT_TYPES, EVENT_TYPES } from '../../core/types.js';
import type { SinkRecord } from '../contract.js';

/**
 * The warehouse's `check`: a record passes when every value fits its column in both backends, so a
 * batch of checked records can only fail to write for a reason outside the records (the runtime
 * then retries; it never has to send a whole batch to the DLQ for one bad value). Pure.
 */

const INT64_MAX = 9223372036854775807n;
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
/** ISO-8601 with a time zone (Z or ±hh:mm): an absolute instant. */
const INSTANT_RE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$/;

function isInt64Text(v: string): boolean {
  return /^(0|[1-9]\d{0,18})$/.test(v) && BigInt(v) <= INT64_MAX;
}

function isInstant(v: unknown): boolean {
  return typeof v === 'string' && INSTANT_RE.test(v) && Number.isFinite(Date.parse(v));
}

function isDate(v: unknown): boolean {
  return typeof v === 'string' && DATE_RE.test(v) && Number.isFinite(Date.parse(`${v}T00:00:00Z`));
}

const finiteOrNull = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v));
const intOrNull = (v: unknown) => v === null || (typeof v === 'number' && Number.isSafeInteger(v));
const textOrNull = (v: unknown) => v === null || typeof v === 'string';

/** Why the record cannot be stored, or null when it can. */
export function checkWarehouseRecord(record: SinkRecord): PipelineError | null {
  // Decoded from JSON: the declared types are what is being checked, so read the values as unknown.
  const e = record.event as unknown as Record<string, unknown>;
  const problems: string[] = [];
  const need = (ok: boolean, what: string) => {
    if (!ok) problems.push(what);
  };
  need(typeof e.event_id === 'string' && isInt64Text(e.event_id), 'event_id is not a non-negative int64 in canonical decimal form');
  need(typeof e.content_id === 'string' && e.content_id.length > 0, 'content_id is missing');
  need(textOrNull(e.user_id), 'user_id is not a string');
  need(typeof e.event_type === 'string' && (EVENT_TYPES as readonly string[]).includes(e.event_type), 'event_type is not play, pause, finish or click');
  need(isInstant(e.event_ts), 'event_ts is not an ISO-8601 instant');
  need(intOrNull(e.duration_ms), 'duration_ms is not an integer');
  need(textOrNull(e.device), 'device is not a string');
  need(typeof e.content_slug === 'string', 'content_slug is missing');
  need(typeof e.content_title === 'string', 'content_title is missing');
  need(e.content_type === null || (typeof e.content_type === 'string' && (CONTENT_TYPES as readonly string[]).includes(e.content_type)), 'content_type is not podcast, newsletter or video');
  need(intOrNull(e.length_seconds), 'length_seconds is not an integer');
  need(e.publish_ts === null || isInstant(e.publish_ts), 'publish_ts is not an ISO-8601 instant');
  need(finiteOrNull(e.engagement_seconds), 'engagement_seconds is not a finite number');
  need(finiteOrNull(e.engagement_pct), 'engagement_pct is not a finite number');
  need(isDate(e.event_date), 'event_date is not YYYY-MM-DD');
  need(isInstant(e.event_hour), 'event_hour is not an ISO-8601 instant');
  need(Number.isSafeInteger(e.source_ts_ms), 'source_ts_ms is not an integer');
  need(Number.isSafeInteger(e.processed_ts_ms), 'processed_ts_ms is not an integer');
  need(e.origin === 'stream' || e.origin === 'backfill', 'origin is not stream or backfill');
  need(Array.isArray(e.quality_flags) && e.quality_flags.every((f: unknown) => typeof f === 'string'), 'quality_flags is not a list of strings');
  need(Number.isSafeInteger(e.schema_version), 'schema_version is not an integer');
  need(isInt64Text(record.offset), 'the Kafka offset is not an int64');
  if (problems.length === 0) return null;
  return new PipelineError('INVALID_VALUE', `warehouse cannot store event ${String(e.event_id)}: ${problems.join('; ')}`, {
    details: { event_id: e.event_id, problems },
  });
}
