import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { SOURCE_CSV_COLUMNS } from '../sinks/source-import.js';
import type { DateRange } from './range.js';
import { EVENT_TS_TEXT, type Cursor } from './reader.js';

/**
 * Reads a page of the range as PostgreSQL's COPY writes it, into a CSV file, for a target that
 * imports source rows itself (src/sinks/source-import.ts): the rows never become JS objects.
 *
 * Keyset pagination as reader.ts does it, in two statements: the page's last (event_ts, id) is
 * looked up first (the `limit`-th row after `after`, or the range's last), then COPY writes
 * every row in (after, last], in (event_ts, id) order. Bounding the COPY by the row rather than
 * by LIMIT gives every page exact ends whoever reads it: a page the target declines is read again
 * through the same bounds by reader.ts (`until`), and a row inserted meanwhile into the page's
 * span lands in the page whichever way it is read.
 */

/** Resolves with the page's last row and its row count, or null when the range has no row after `after` (no file written). */
export async function copyPage(client: pg.ClientBase, range: DateRange, after: Cursor | null, limit: number, file: string): Promise<{ last: Cursor; rows: number } | null> {
  const where = rangeWhere(client, range, after);
  const end = await client.query<{ event_ts: string; id: string }>(
    `SELECT ${EVENT_TS_TEXT} AS event_ts, id::text AS id FROM (SELECT event_ts, id FROM engagement_events WHERE ${where} ORDER BY event_ts, id LIMIT ${limitOf(limit)}) AS page ORDER BY event_ts DESC, id DESC LIMIT 1`,
  );
  const last = end.rows[0];
  if (!last) return null;
  const through = `${where} AND (event_ts, id) <= (${client.escapeLiteral(last.event_ts)}::timestamptz, ${idOf(last.id)})`;
  const columns = SOURCE_CSV_COLUMNS.map((c) => COLUMN_SQL[c]).join(', ');
  const copy = client.query(copyTo(`COPY (SELECT ${columns} FROM engagement_events WHERE ${through} ORDER BY event_ts, id) TO STDOUT (FORMAT csv)`));
  await pipeline(copy, createWriteStream(file));
  return { last: { eventTs: last.event_ts, id: last.id }, rows: copy.rowCount };
}

/** Each CSV column as the CDC renders it (reader.ts does the same for rows). */
const COLUMN_SQL: Record<(typeof SOURCE_CSV_COLUMNS)[number], string> = {
  event_ts: EVENT_TS_TEXT,
  id: 'id::text',
  content_id: 'content_id::text',
  user_id: 'user_id::text',
  event_type: 'event_type',
  duration_ms: 'duration_ms',
  device: 'device',
  raw_payload: 'raw_payload::text',
};

/** COPY takes no parameters: the bounds are literals, each checked or escaped. */
function rangeWhere(client: pg.ClientBase, range: DateRange, after: Cursor | null): string {
  let where = `event_ts >= ${client.escapeLiteral(range.fromTs.toISOString())}::timestamptz AND event_ts < ${client.escapeLiteral(range.untilTs.toISOString())}::timestamptz`;
  if (after) where += ` AND (event_ts, id) > (${client.escapeLiteral(after.eventTs)}::timestamptz, ${idOf(after.id)})`;
  return where;
}

function idOf(id: string): string {
  if (!/^-?\d{1,19}$/.test(id)) throw new Error(`not a row id: ${JSON.stringify(id)}`);
  return `${id}::bigint`;
}

function limitOf(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`not a page size: ${limit}`);
  return limit;
}
