import { createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { SOURCE_CSV_COLUMNS } from '../sinks/source-import.js';
import type { DateRange } from './range.js';
import type { SourceColumnSql } from './pseudonym-sql.js';
import { SOURCE_COLUMN_SQL, type Cursor } from './reader.js';

/**
 * Reads a page of the range as PostgreSQL's COPY writes it, into a CSV file, for a target that
 * imports source rows itself (src/sinks/source-import.ts): the rows never become JS objects.
 *
 * Keyset pagination as reader.ts does it: the next `limit` rows after `after` in (event_ts, id)
 * order. The page's last row — the next page's cursor, needed before the page is imported so that
 * the next COPY can run meanwhile — is read from the end of the file, where SOURCE_CSV_COLUMNS puts
 * (event_ts, id). A page the target declines is read again as rows by reader.ts through the same
 * bounds (`after`, `until` = its last row). `columnSql` selects each column (default: as the row
 * reader does); under PII_FIELDS the tagged ones are their pseudonyms, computed by PostgreSQL
 * (pseudonym-sql.ts), so the file never holds their raw values.
 */

/** Resolves with the page's last row and its row count, or null when the range has no row after `after` (the file removed). */
export async function copyPage(
  client: pg.ClientBase,
  range: DateRange,
  after: Cursor | null,
  limit: number,
  file: string,
  columnSql: SourceColumnSql = SOURCE_COLUMN_SQL,
): Promise<{ last: Cursor; rows: number } | null> {
  const columns = SOURCE_CSV_COLUMNS.map((c) => columnSql[c]).join(', ');
  // The table's columns, qualified: `id` alone would name the output column `id::text`, which sorts as text.
  const copy = client.query(
    copyTo(
      `COPY (SELECT ${columns} FROM engagement_events WHERE ${rangeWhere(client, range, after)} ORDER BY engagement_events.event_ts, engagement_events.id LIMIT ${limitOf(limit)}) TO STDOUT (FORMAT csv)`,
    ),
  );
  // Wrapped: `pipeline` calls a generator stage with (source, { signal }), which would land in minBytes.
  await pipeline(copy, (source: AsyncIterable<Buffer>) => inLargeChunks(source), createWriteStream(file));
  if (copy.rowCount === 0) {
    await rm(file, { force: true });
    return null;
  }
  return { last: await lastRow(file), rows: copy.rowCount };
}

const WRITE_BYTES = 1 << 20;

/**
 * COPY's output arrives as the socket reads it, ~10 KB at a time; the file stream makes one write
 * on libuv's pool per chunk it is given, which cost ~1 µs of CPU per row (30,000 writes per
 * 1,000,000 rows). Handed over in chunks of at least `minBytes` instead, the bytes and their order
 * unchanged (docs/benchmarks.md history, 2026-11-28).
 */
export async function* inLargeChunks(source: AsyncIterable<Buffer>, minBytes = WRITE_BYTES): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    parts.push(chunk);
    size += chunk.length;
    if (size >= minBytes) {
      yield Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(parts, size);
}

/** The (event_ts, id) that ends the file's last line. */
async function lastRow(file: string): Promise<Cursor> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, TAIL_BYTES);
    const { buffer } = await handle.read(Buffer.alloc(length), 0, length, size - length);
    const m = LAST_ROW_RE.exec(buffer.toString('latin1'));
    if (!m) throw new Error(`copy-reader: ${file} does not end with an (event_ts, id) line`);
    return { eventTs: m[1] as string, id: m[2] as string };
  } finally {
    await handle.close();
  }
}
const TAIL_BYTES = 128;
const LAST_ROW_RE = /,(\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z),(-?\d{1,19})\n$/;

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
