import { CONTENT_TYPES, EVENT_TYPES } from '../../../../core/types.js';
import {
  MAX_FUTURE_SKEW_MS,
  MAX_PLAUSIBLE_DURATION_MS,
  MIN_EVENT_TS_MS,
  PLAUSIBLE_LENGTH_FACTOR,
  PLAUSIBLE_MARGIN_MS,
} from '../../../../core/event-rules.js';
import { DIRECT_OFFSET, DIRECT_PARTITION } from '../../../../core/sink-contract.js';
import { SOURCE_CSV_COLUMNS } from '../../../source-import.js';
import { duckdbDialect as d } from '../../dialect.js';
import { factSelectSql } from '../fast-path/encoded-sql.js';
import { FACT_TABLE } from '../../schema.js';

/**
 * SQL of the DuckDB bulk import (bulk-import/bulk-import.ts): the stream's transform (src/processor/
 * enrich.ts over validate.ts) expressed in DuckDB SQL over a CSV file of source rows, in two
 * statements that each read the file (reading it costs less than staging what it holds): a
 * verdict, then the insert.
 *
 * The rule this file must keep: a row is `accepted` only if `enrichEvent` would accept it AND the
 * warehouse's `check` (record-check.ts) would pass the event it makes, and the insert then stores
 * exactly what `write` stores for that event. The acceptance here is stricter where matching JS
 * exactly would be costly (a timestamp not in the form PostgreSQL's to_char writes, ids of 19 or
 * more digits): such a row makes the page go the ordinary way, which decides for itself.
 * test/sinks/warehouse/warehouse-source-import.test.ts holds the two ways to the same rows, and every
 * rejection of validate.ts to a decline.
 */

export const SOURCE_CONTENT = 'stage_source_content';

/** The catalogue the rows are joined with, as the backfill read it (ContentRow). */
export function createSourceContentSql(): string {
  return `CREATE OR REPLACE TEMP TABLE ${d.ident(SOURCE_CONTENT)} (id VARCHAR, slug VARCHAR, title VARCHAR, content_type VARCHAR, length_seconds BIGINT, publish_ts VARCHAR)`;
}

const CSV_TYPES: Record<(typeof SOURCE_CSV_COLUMNS)[number], string> = {
  event_ts: 'VARCHAR',
  id: 'VARCHAR',
  content_id: 'VARCHAR',
  user_id: 'VARCHAR',
  event_type: 'VARCHAR',
  duration_ms: 'BIGINT',
  device: 'VARCHAR',
  raw_payload: 'VARCHAR',
};

/** to_char's form of an instant in UTC, as the backfill's reader and the CDC write it. */
const CANONICAL_TS_RE = `'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z'`;

const quote = (v: string) => `'${v.replaceAll("'", "''")}'`;

/** The file's rows joined with the catalogue: `s` the source row, `c` its content (NULLs when unknown). */
function sourceFrom(file: string): string {
  const columns = `{${SOURCE_CSV_COLUMNS.map((c) => `'${c}': '${CSV_TYPES[c]}'`).join(', ')}}`;
  const csv = `read_csv(${quote(file)}, header = false, auto_detect = false, delim = ',', quote = '"', escape = '"', new_line = '\\n', allow_quoted_nulls = false, columns = ${columns})`;
  return `FROM ${csv} AS s LEFT JOIN ${d.ident(SOURCE_CONTENT)} AS c ON c.id = s.content_id`;
}

/** Whether enrichEvent accepts the row at `nowMs` and `check` passes the event (never NULL). */
function acceptedSql(nowMs: number): string {
  // validate.ts compares milliseconds; the canonical text compares the same way, character by character.
  const minTs = new Date(MIN_EVENT_TS_MS).toISOString().slice(0, 23);
  const maxTs = new Date(nowMs + MAX_FUTURE_SKEW_MS).toISOString().slice(0, 23);
  const conditions = [
    // validate.ts
    `regexp_full_match(s.id, '0|[1-9][0-9]{0,17}')`,
    `s.content_id IS NOT NULL`,
    `s.event_type IN (${EVENT_TYPES.map(quote).join(', ')})`,
    `regexp_full_match(s.event_ts, ${CANONICAL_TS_RE})`,
    `substr(s.event_ts, 1, 23) >= '${minTs}'`,
    `substr(s.event_ts, 1, 23) <= '${maxTs}'`,
    `(s.duration_ms IS NULL OR s.duration_ms >= 0)`,
    // enrich.ts: the content is known; record-check.ts: its values fit the columns
    `c.id IS NOT NULL`,
    `c.slug IS NOT NULL`,
    `c.title IS NOT NULL`,
    `(c.content_type IS NULL OR c.content_type IN (${CONTENT_TYPES.map(quote).join(', ')}))`,
    `(c.publish_ts IS NULL OR regexp_full_match(c.publish_ts, ${CANONICAL_TS_RE}))`,
  ];
  return `((${conditions.join(' AND ')}) IS true)`;
}

/**
 * The page's verdict in one row: rows read, rows not accepted, events repeated (the same id and
 * event_ts: src/core/event-identity.ts; the canonical text compares as the instant), the smallest and
 * largest id, and the content ids it refers to. Fails (Invalid Input, Conversion) when the file
 * is not the CSV that SOURCE_CSV_COLUMNS describes: the caller declines the page.
 */
export function sourceVerdictSql(file: string, nowMs: number): string {
  return [
    `SELECT count(*) AS staged, count(*) FILTER (WHERE NOT ${acceptedSql(nowMs)}) AS bad,`,
    `  count(*) - count(DISTINCT (s.id, s.event_ts)) AS repeated,`,
    `  min(TRY_CAST(s.id AS BIGINT)) AS lo, max(TRY_CAST(s.id AS BIGINT)) AS hi,`,
    `  list(DISTINCT s.content_id) FILTER (WHERE s.content_id IS NOT NULL) AS content_ids`,
    sourceFrom(file),
  ].join('\n');
}

/**
 * Inserts the enriched events of the file's rows whose (event_id, event_ts) is not stored already
 * (an id stored with another event_ts is a new event: ids are reused after a sequence reset),
 * for a page whose verdict found every row accepted and [lo, hi] its ids. Fails (Conversion) when
 * a raw_payload is not JSON: the caller declines the page.
 */
export function insertSourceSql(file: string, nowMs: number, lo: bigint, hi: bigint): string {
  // enrich.ts: seconds = duration_ms / 1000; pct = seconds / length * 100 (length > 0); the flags in
  // validate.ts's order, then the length's, then implausible_duration (durationFlag, in doubles as JS computes it).
  const seconds = `(CAST(s.duration_ms AS DOUBLE) / 1000)`;
  const pct = `(${seconds} / CAST(c.length_seconds AS DOUBLE) * 100)`;
  const lengthFlag = `CASE WHEN c.length_seconds IS NULL THEN 'missing_length' WHEN c.length_seconds <= 0 THEN 'non_positive_length' WHEN ${pct} > 100 THEN 'pct_above_100' END`;
  const limit = `CASE WHEN c.length_seconds > 0 THEN least(${MAX_PLAUSIBLE_DURATION_MS}, CAST(c.length_seconds AS DOUBLE) * 1000 * ${PLAUSIBLE_LENGTH_FACTOR} + ${PLAUSIBLE_MARGIN_MS}) ELSE ${MAX_PLAUSIBLE_DURATION_MS} END`;
  const durationFlag = `CASE WHEN CAST(s.duration_ms AS DOUBLE) > ${limit} THEN 'implausible_duration' END`;
  const flags = `list_filter([CASE WHEN s.duration_ms IS NULL THEN 'missing_duration' END, CASE WHEN s.user_id IS NULL THEN 'missing_user' END, CASE WHEN s.device IS NULL THEN 'missing_device' END, ${lengthFlag}, ${durationFlag}], f -> f IS NOT NULL)`;
  const values: Record<string, string> = {
    event_id: 's.id',
    content_id: 's.content_id',
    user_id: 's.user_id',
    event_type: 's.event_type',
    event_ts: 's.event_ts',
    duration_ms: 's.duration_ms',
    device: 's.device',
    raw_payload: 'json(s.raw_payload)',
    extra: `'{}'`,
    content_slug: 'c.slug',
    content_title: 'c.title',
    content_type: 'c.content_type',
    length_seconds: 'c.length_seconds',
    publish_ts: 'c.publish_ts',
    engagement_seconds: seconds,
    engagement_pct: `CASE WHEN c.length_seconds > 0 THEN ${pct} END`,
    event_date: 'substr(s.event_ts, 1, 10)',
    event_hour: `substr(s.event_ts, 1, 13) || ':00:00.000Z'`,
    source_ts_ms: String(nowMs),
    processed_ts_ms: String(nowMs),
    origin: `'backfill'`,
    quality_flags: flags,
    schema_version: '1',
  };
  const valueOf = (n: string): string => {
    const v = values[n];
    if (v === undefined) throw new Error(`insertSourceSql: no value for ${n}`);
    return v;
  };
  const facts = d.table(FACT_TABLE.name);
  return [
    `INSERT INTO ${facts}`,
    `SELECT ${factSelectSql(valueOf, String(DIRECT_PARTITION), DIRECT_OFFSET)}`,
    sourceFrom(file),
    `WHERE (CAST(s.id AS BIGINT), CAST(s.event_ts AS TIMESTAMPTZ)) NOT IN (SELECT (event_id, event_ts) FROM ${facts} WHERE event_id BETWEEN ${lo} AND ${hi})`,
  ].join('\n');
}
