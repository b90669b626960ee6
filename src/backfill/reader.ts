import type pg from 'pg';
import type { EngagementEventRow } from '../core/types.js';
import type { SOURCE_CSV_COLUMNS } from '../sinks/source-import.js';
import type { DateRange } from './range.js';

/**
 * Reads `engagement_events` for a range in (event_ts, id) order by keyset pagination (never
 * OFFSET): each page starts strictly after the last row of the previous one, so a resumed run
 * continues exactly where the progress record says, and the event_ts index bounds the scan.
 * Rows are rendered as the CDC renders them (id as a decimal string, timestamps ISO-8601 UTC,
 * raw_payload as JSON text), so the same pure transform applies.
 */

export interface Cursor {
  eventTs: string;
  id: string;
}

export interface Page {
  rows: EngagementEventRow[];
  last: Cursor | null;
}

/**
 * Each column of a source row as the CDC renders it (event_ts: ISO-8601 in UTC, microseconds,
 * `Z`); the row reader here and copy-reader.ts's CSV both select them.
 */
export const SOURCE_COLUMN_SQL: Record<(typeof SOURCE_CSV_COLUMNS)[number], string> = {
  id: 'id::text',
  content_id: 'content_id::text',
  user_id: 'user_id::text',
  event_type: 'event_type',
  event_ts: `to_char(event_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
  duration_ms: 'duration_ms',
  device: 'device',
  raw_payload: 'raw_payload::text',
};

const COLUMNS = Object.entries(SOURCE_COLUMN_SQL)
  .map(([name, sql]) => `${sql} AS ${name}`)
  .join(', ');

/**
 * The next `limit` rows after `after`; with `until`, instead every row in (after, until] — the
 * bounds of a page copy-reader.ts read before, read again (the limit then does not apply).
 */
export async function readPage(
  client: pg.ClientBase,
  range: DateRange,
  after: Cursor | null,
  limit: number,
  until?: Cursor,
): Promise<Page> {
  const params: unknown[] = [range.fromTs, range.untilTs];
  let where = 'event_ts >= $1 AND event_ts < $2';
  if (after) {
    params.push(after.eventTs, after.id);
    where += ` AND (event_ts, id) > ($${params.length - 1}::timestamptz, $${params.length}::bigint)`;
  }
  if (until) {
    params.push(until.eventTs, until.id);
    where += ` AND (event_ts, id) <= ($${params.length - 1}::timestamptz, $${params.length}::bigint)`;
  } else {
    params.push(limit);
  }
  const tail = until ? '' : ` LIMIT $${params.length}`;
  const res = await client.query<EngagementEventRow>(
    `SELECT ${COLUMNS} FROM engagement_events WHERE ${where} ORDER BY engagement_events.event_ts, engagement_events.id${tail}`,
    params,
  );
  const rows = res.rows;
  const lastRow = rows[rows.length - 1];
  return { rows, last: lastRow ? { eventTs: lastRow.event_ts, id: lastRow.id } : null };
}

export async function countRange(client: pg.ClientBase, range: DateRange, after: Cursor | null): Promise<number> {
  const params: unknown[] = [range.fromTs, range.untilTs];
  let where = 'event_ts >= $1 AND event_ts < $2';
  if (after) {
    params.push(after.eventTs, after.id);
    where += ' AND (event_ts, id) > ($3::timestamptz, $4::bigint)';
  }
  const res = await client.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM engagement_events WHERE ${where}`,
    params,
  );
  return Number(res.rows[0]?.n ?? 0);
}

/**
 * The planner's estimate of the range's rows. Far below the real count (statistics older than a
 * bulk load), the page query is planned as a sort of the whole remaining range for every page
 * instead of a walk of the event_ts index: the caller warns and names the fix (ANALYZE).
 */
export async function estimatedRangeRows(client: pg.ClientBase, range: DateRange): Promise<number> {
  const res = await client.query<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>(
    `EXPLAIN (FORMAT JSON) SELECT 1 FROM engagement_events WHERE event_ts >= '${range.fromTs.toISOString()}' AND event_ts < '${range.untilTs.toISOString()}'`,
  );
  return Number(res.rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'] ?? 0);
}
