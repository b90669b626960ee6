import type { PipelineError } from '../core/errors.js';
import {
  EVENT_TYPES,
  TRUNCATED_VALUE,
  type EngagementEventRow,
  type EventType,
  type QualityFlag,
} from '../core/types.js';
import { rejection } from './reasons.js';
import { MAX_FUTURE_SKEW_MS, MIN_EVENT_TS_MS } from '../core/event-rules.js';

/**
 * Validation of one `engagement_events` row (as the CDC renders it, or as the backfill reads it).
 * Pure. A row that cannot become an enriched event is rejected with a reason (→ DLQ); a valid but
 * incomplete row goes on with quality flags. The split is documented in docs/processor.md.
 */

export interface ValidEvent {
  event_id: string;
  content_id: string;
  user_id: string | null;
  event_type: EventType;
  /** Canonical ISO-8601 UTC (`T` separator, `Z`), the source's fraction digits kept. */
  event_ts: string;
  event_ts_ms: number;
  duration_ms: number | null;
  device: string | null;
  raw_payload: unknown;
  extra: Record<string, unknown>;
  flags: QualityFlag[];
}

export type Validated = { ok: true; value: ValidEvent } | { ok: false; error: PipelineError };

export { MIN_EVENT_TS_MS, MAX_FUTURE_SKEW_MS };

const KNOWN_COLUMNS = new Set([
  'id',
  'content_id',
  'user_id',
  'event_type',
  'event_ts',
  'duration_ms',
  'device',
  'raw_payload',
]);
const EVENT_TYPE_SET = new Set<string>(EVENT_TYPES);
const TS_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}(?::?\d{2})?)$/;

export interface ParsedTimestamp {
  ms: number;
  canonical: string;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(y: number, mo: number): number {
  if (mo === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)) return 29;
  return DAYS_IN_MONTH[mo - 1] as number;
}

/** Parses an ISO-8601 timestamp with a zone (`Z` or ±HH[:MM]); null when malformed or impossible. */
export function parseTimestamp(text: string): ParsedTimestamp | null {
  const m = TS_RE.exec(text);
  if (!m) return null;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const h = Number(m[4]);
  const mi = Number(m[5]);
  const s = Number(m[6]);
  const frac = m[7] ?? '';
  const zone = m[8] ?? 'Z';
  // Years below 100 are rejected as Date.UTC would map them to 19xx.
  if (y < 100 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || s > 59) return null;
  const local = Date.UTC(y, mo - 1, d, h, mi, s, frac === '' ? 0 : Number(frac.slice(0, 3).padEnd(3, '0')));
  let offsetMin = 0;
  if (zone !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    offsetMin = (zone[0] === '-' ? -1 : 1) * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
  }
  const ms = local - offsetMin * 60000;
  if (zone === 'Z' && text[10] === 'T') return { ms, canonical: text };
  // Offsets are whole minutes, so the fraction digits are unchanged by the shift to UTC.
  const canonical = `${new Date(ms).toISOString().slice(0, 19)}${frac ? `.${frac}` : ''}Z`;
  return { ms, canonical };
}

function missing(v: unknown): v is null | undefined {
  return v === null || v === undefined;
}

/** Checks a row against the rules in docs/processor.md; `nowMs` bounds event_ts from above. */
export function validateEventRow(row: EngagementEventRow, nowMs: number): Validated {
  const flags: QualityFlag[] = [];

  const rawId: unknown = row.id;
  if (missing(rawId)) return { ok: false, error: rejection('MISSING_FIELD', 'id is missing', { field: 'id' }) };
  let eventId: string;
  if (typeof rawId === 'string' && /^\d{1,20}$/.test(rawId)) eventId = rawId;
  else if (typeof rawId === 'number' && Number.isSafeInteger(rawId) && rawId >= 0) eventId = String(rawId);
  else
    return {
      ok: false,
      error: rejection('INVALID_VALUE', `id ${JSON.stringify(rawId)} is not a decimal integer`, { field: 'id' }),
    };

  const contentId: unknown = row.content_id;
  if (missing(contentId))
    return {
      ok: false,
      error: rejection('NULL_CONTENT_ID', `event ${eventId} has no content_id`, { field: 'content_id' }),
    };
  if (typeof contentId !== 'string' || contentId.length === 0) {
    return {
      ok: false,
      error: rejection('INVALID_VALUE', `content_id ${JSON.stringify(contentId)} is not a string`, {
        field: 'content_id',
      }),
    };
  }

  const eventType: unknown = row.event_type;
  if (missing(eventType))
    return {
      ok: false,
      error: rejection('MISSING_FIELD', `event ${eventId} has no event_type`, { field: 'event_type' }),
    };
  if (typeof eventType !== 'string' || !EVENT_TYPE_SET.has(eventType)) {
    return {
      ok: false,
      error: rejection(
        'UNKNOWN_EVENT_TYPE',
        `event_type ${JSON.stringify(eventType)} is not one of ${EVENT_TYPES.join(', ')}`,
        { field: 'event_type' },
      ),
    };
  }

  const rawTs: unknown = row.event_ts;
  if (missing(rawTs))
    return { ok: false, error: rejection('MISSING_FIELD', `event ${eventId} has no event_ts`, { field: 'event_ts' }) };
  const ts = typeof rawTs === 'string' ? parseTimestamp(rawTs) : null;
  if (!ts)
    return {
      ok: false,
      error: rejection('INVALID_VALUE', `event_ts ${JSON.stringify(rawTs)} is not an ISO-8601 timestamp with a zone`, {
        field: 'event_ts',
      }),
    };
  if (ts.ms < MIN_EVENT_TS_MS)
    return {
      ok: false,
      error: rejection('EVENT_TS_BEFORE_2000', `event_ts ${ts.canonical} is before 2000-01-01`, { field: 'event_ts' }),
    };
  if (ts.ms > nowMs + MAX_FUTURE_SKEW_MS) {
    return {
      ok: false,
      error: rejection(
        'EVENT_TS_IN_FUTURE',
        `event_ts ${ts.canonical} is more than 1 day after ${new Date(nowMs).toISOString()}`,
        { field: 'event_ts' },
      ),
    };
  }

  const rawDuration: unknown = row.duration_ms;
  let duration: number | null = null;
  if (missing(rawDuration)) flags.push('missing_duration');
  else if (typeof rawDuration !== 'number' || !Number.isFinite(rawDuration)) {
    return {
      ok: false,
      error: rejection('INVALID_VALUE', `duration_ms ${JSON.stringify(rawDuration)} is not a number`, {
        field: 'duration_ms',
      }),
    };
  } else if (rawDuration < 0) {
    return {
      ok: false,
      error: rejection('NEGATIVE_DURATION', `duration_ms is ${rawDuration}`, { field: 'duration_ms' }),
    };
  } else duration = rawDuration;

  const userId: unknown = row.user_id;
  if (missing(userId)) flags.push('missing_user');
  else if (typeof userId !== 'string')
    return {
      ok: false,
      error: rejection('INVALID_VALUE', `user_id ${JSON.stringify(userId)} is not a string`, { field: 'user_id' }),
    };

  const device: unknown = row.device;
  if (missing(device)) flags.push('missing_device');
  else if (typeof device !== 'string')
    return {
      ok: false,
      error: rejection('INVALID_VALUE', `device ${JSON.stringify(device)} is not a string`, { field: 'device' }),
    };

  let payload: unknown = row.raw_payload ?? null;
  if (payload === TRUNCATED_VALUE)
    flags.push('truncated_raw_payload'); // kept as the marker: the row is in PostgreSQL
  else if (typeof payload === 'string') {
    try {
      payload = JSON.parse(payload);
    } catch {
      flags.push('invalid_raw_payload');
    }
  }

  const extra: Record<string, unknown> = {};
  for (const key in row) if (!KNOWN_COLUMNS.has(key)) extra[key] = row[key];

  return {
    ok: true,
    value: {
      event_id: eventId,
      content_id: contentId,
      user_id: (userId as string | null | undefined) ?? null,
      event_type: eventType as EventType,
      event_ts: ts.canonical,
      event_ts_ms: ts.ms,
      duration_ms: duration,
      device: (device as string | null | undefined) ?? null,
      raw_payload: payload,
      extra,
      flags,
    },
  };
}
