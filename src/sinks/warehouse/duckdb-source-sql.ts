import { EVENT_TYPES } from '../../core/types.js';
import { MAX_FUTURE_SKEW_MS, MIN_EVENT_TS_MS } from '../../processor/validate.js';
import { DIRECT_OFFSET } from '../contract.js';
import { SOURCE_CSV_COLUMNS } from '../source-import.js';
import { duckdbDialect as d } from './dialect.js';
import { STAGE_ROWS, stagedRowSql } from './duckdb-encoded-sql.js';

/**
 * SQL of the DuckDB bulk import (duckdb-source.ts): the stream's transform (src/processor/
 * enrich.ts over validate.ts) expressed in DuckDB SQL over a CSV file of source rows, staging the
 * enriched events into STAGE_ROWS, from where the fast path's verdict and insert take them.
 *
 * The rule this file must keep: a staged row has a non-NULL offset `o` only if `enrichEvent`
 * would accept the same row, and then every field equals what `enrichEvent` makes of it. The
 * acceptance here is stricter where matching JS exactly would be costly (a timestamp not in the
 * form PostgreSQL's to_char writes, ids that are not plain digits): such a row makes the page go
 * the ordinary way, which decides for itself. test/sinks/warehouse-source-import.test.ts holds
 * the two ways to the same rows, and every rejection of validate.ts to a decline.
 */

export const SOURCE_CONTENT = 'stage_source_content';

/** The catalogue the rows are joined with, as the backfill read it (ContentRow). */
export function createSourceContentSql(): string {
  return `CREATE OR REPLACE TEMP TABLE ${d.ident(SOURCE_CONTENT)} (id VARCHAR, slug VARCHAR, title VARCHAR, content_type VARCHAR, length_seconds BIGINT, publish_ts VARCHAR)`;
}

const CSV_TYPES: Record<(typeof SOURCE_CSV_COLUMNS)[number], string> = {
  event_ts: 'VARCHAR', id: 'VARCHAR', content_id: 'VARCHAR', user_id: 'VARCHAR', event_type: 'VARCHAR', duration_ms: 'BIGINT', device: 'VARCHAR', raw_payload: 'VARCHAR',
};

/** to_char's form of an instant in UTC, as the backfill's reader and the CDC write it. */
const CANONICAL_TS_RE = `'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z'`;

const quote = (v: string) => `'${v.replaceAll("'", "''")}'`;

/**
 * Stages the file's rows (STAGE_ROWS emptied by the caller in the same transaction), enriched at
 * `nowMs`. Fails (Invalid Input, Conversion) when the file is not the CSV that SOURCE_CSV_COLUMNS
 * describes, or a raw_payload is not JSON: the caller declines the page.
 */
export function stageSourceRowsSql(file: string, nowMs: number): string {
  const columns = `{${SOURCE_CSV_COLUMNS.map((c) => `'${c}': '${CSV_TYPES[c]}'`).join(', ')}}`;
  const csv = `read_csv(${quote(file)}, header = false, auto_detect = false, delim = ',', quote = '"', escape = '"', new_line = '\\n', allow_quoted_nulls = false, columns = ${columns})`;
  // validate.ts compares milliseconds; the canonical text compares the same way, character by character.
  const minTs = new Date(MIN_EVENT_TS_MS).toISOString().slice(0, 23);
  const maxTs = new Date(nowMs + MAX_FUTURE_SKEW_MS).toISOString().slice(0, 23);
  const accepted = [
    `regexp_full_match(s.id, '[0-9]{1,20}')`,
    `s.content_id IS NOT NULL`,
    `c.id IS NOT NULL`,
    `s.event_type IN (${EVENT_TYPES.map(quote).join(', ')})`,
    `regexp_full_match(s.event_ts, ${CANONICAL_TS_RE})`,
    `substr(s.event_ts, 1, 23) >= '${minTs}'`,
    `substr(s.event_ts, 1, 23) <= '${maxTs}'`,
    `(s.duration_ms IS NULL OR s.duration_ms >= 0)`,
  ].join(' AND ');
  // enrich.ts: seconds = duration_ms / 1000; pct = seconds / length * 100 (length > 0); the flags in validate.ts's order, then the length's.
  const seconds = `(CAST(s.duration_ms AS DOUBLE) / 1000)`;
  const pct = `(${seconds} / CAST(c.length_seconds AS DOUBLE) * 100)`;
  const lengthFlag = `CASE WHEN c.length_seconds IS NULL THEN 'missing_length' WHEN c.length_seconds <= 0 THEN 'non_positive_length' WHEN ${pct} > 100 THEN 'pct_above_100' END`;
  const flags = `to_json(list_filter([CASE WHEN s.duration_ms IS NULL THEN 'missing_duration' END, CASE WHEN s.user_id IS NULL THEN 'missing_user' END, CASE WHEN s.device IS NULL THEN 'missing_device' END, ${lengthFlag}], f -> f IS NOT NULL))`;
  const { r, t } = stagedRowSql({
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
  });
  return [
    `INSERT INTO ${d.ident(STAGE_ROWS)}`,
    `SELECT row_number() OVER (ORDER BY s.event_ts, TRY_CAST(s.id AS HUGEINT)) - 1 AS i,`,
    `  CASE WHEN ${accepted} THEN '${DIRECT_OFFSET}' END AS o, ${r} AS r, ${t} AS t`,
    `FROM ${csv} AS s LEFT JOIN ${d.ident(SOURCE_CONTENT)} AS c ON c.id = s.content_id`,
  ].join('\n');
}
