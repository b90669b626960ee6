import { PipelineError } from '../../core/errors.js';
import { CONTENT_TYPES, EVENT_TYPES } from '../../core/types.js';
import { DIRECT_OFFSET, DIRECT_PARTITION, type SinkRecord } from '../../core/sink-contract.js';

/**
 * The warehouse's `check`: a record passes when every value fits its column in both backends, so a
 * batch of checked records can only fail to write for a reason outside the records (the runtime
 * then retries; it never has to send a whole batch to the DLQ for one bad value). Pure.
 */

const INT64_MAX = 9223372036854775807n;
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
/** ISO-8601 with a time zone (Z or ±hh:mm): an absolute instant. */
const INSTANT_RE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$/;
const INT64_TEXT_RE = /^(0|[1-9]\d{0,18})$/;

function isInt64Text(v: string): boolean {
  // Up to 18 digits is always within int64; only 19-digit values need the exact comparison.
  return INT64_TEXT_RE.test(v) && (v.length < 19 || BigInt(v) <= INT64_MAX);
}

function isInstant(v: unknown): boolean {
  return typeof v === 'string' && INSTANT_RE.test(v) && Number.isFinite(Date.parse(v));
}

function isDate(v: unknown): boolean {
  return typeof v === 'string' && DATE_RE.test(v) && Number.isFinite(Date.parse(`${v}T00:00:00Z`));
}

/**
 * `judge` of a text through a bounded cache of recent verdicts: publish times, event hours and
 * dates repeat across a batch's records, so each distinct text is parsed once (a pure function's
 * cache: the verdicts are the same either way).
 */
function remembered(cache: Map<string, boolean>, judge: (v: unknown) => boolean, v: unknown): boolean {
  if (typeof v !== 'string') return false;
  let ok = cache.get(v);
  if (ok === undefined) {
    ok = judge(v);
    if (cache.size >= 4096) cache.clear();
    cache.set(v, ok);
  }
  return ok;
}
const instants = new Map<string, boolean>();
const dates = new Map<string, boolean>();

const finiteOrNull = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v));
const intOrNull = (v: unknown) => v === null || (typeof v === 'number' && Number.isSafeInteger(v));
const textOrNull = (v: unknown) => v === null || typeof v === 'string';
const isStringList = (v: unknown) => Array.isArray(v) && v.every((f: unknown) => typeof f === 'string');

type Values = Record<string, unknown>;

/** Each rule: what must hold of the event (decoded from JSON, so read as unknown) or its record, and the problem named when it does not. */
const RULES: ReadonlyArray<readonly [(e: Values, r: SinkRecord) => boolean, string]> = [
  [
    (e) => typeof e.event_id === 'string' && isInt64Text(e.event_id),
    'event_id is not a non-negative int64 in canonical decimal form',
  ],
  [(e) => typeof e.content_id === 'string' && e.content_id.length > 0, 'content_id is missing'],
  [(e) => textOrNull(e.user_id), 'user_id is not a string'],
  [
    (e) => typeof e.event_type === 'string' && (EVENT_TYPES as readonly string[]).includes(e.event_type),
    'event_type is not play, pause, finish or click',
  ],
  [(e) => isInstant(e.event_ts), 'event_ts is not an ISO-8601 instant'],
  [(e) => intOrNull(e.duration_ms), 'duration_ms is not an integer'],
  [(e) => textOrNull(e.device), 'device is not a string'],
  [(e) => typeof e.content_slug === 'string', 'content_slug is missing'],
  [(e) => typeof e.content_title === 'string', 'content_title is missing'],
  [
    (e) =>
      e.content_type === null ||
      (typeof e.content_type === 'string' && (CONTENT_TYPES as readonly string[]).includes(e.content_type)),
    'content_type is not podcast, newsletter or video',
  ],
  [(e) => intOrNull(e.length_seconds), 'length_seconds is not an integer'],
  [
    (e) => e.publish_ts === null || remembered(instants, isInstant, e.publish_ts),
    'publish_ts is not an ISO-8601 instant',
  ],
  [(e) => finiteOrNull(e.engagement_seconds), 'engagement_seconds is not a finite number'],
  [(e) => finiteOrNull(e.engagement_pct), 'engagement_pct is not a finite number'],
  [(e) => remembered(dates, isDate, e.event_date), 'event_date is not YYYY-MM-DD'],
  [(e) => remembered(instants, isInstant, e.event_hour), 'event_hour is not an ISO-8601 instant'],
  [(e) => Number.isSafeInteger(e.source_ts_ms), 'source_ts_ms is not an integer'],
  [(e) => Number.isSafeInteger(e.processed_ts_ms), 'processed_ts_ms is not an integer'],
  [(e) => e.origin === 'stream' || e.origin === 'backfill', 'origin is not stream or backfill'],
  [(e) => isStringList(e.quality_flags), 'quality_flags is not a list of strings'],
  [(e) => Number.isSafeInteger(e.schema_version), 'schema_version is not an integer'],
  [
    (_, r) => isInt64Text(r.offset) || (r.offset === DIRECT_OFFSET && r.partition === DIRECT_PARTITION),
    'the Kafka offset is not an int64',
  ],
];

/** Why the record cannot be stored (every rule it breaks, in RULES order), or null when it can. */
export function checkWarehouseRecord(record: SinkRecord): PipelineError | null {
  const e = record.event as unknown as Values;
  let problems: string[] | null = null;
  for (const [holds, problem] of RULES) if (!holds(e, record)) (problems ??= []).push(problem);
  if (problems === null) return null;
  return new PipelineError(
    'INVALID_VALUE',
    `warehouse cannot store event ${String(e.event_id)}: ${problems.join('; ')}`,
    {
      details: { event_id: e.event_id, problems },
    },
  );
}
