import { duckdbDialect as d } from '../dialect.js';
import {
  CONTENT_DIM,
  FACT_TABLE,
  OFFSETS_TABLE,
  TABLES,
  writtenColumns,
  type CellValue,
  type ColumnDef,
  type Row,
  type TableDef,
} from '../schema.js';
import { viewDefinitions } from '../views.js';

/**
 * The SQL the DuckDB backend runs, generated from schema.ts and views.ts. Pure functions.
 *
 * Fact rows are appended typed (checked/chunk.ts). Content rows go through a TEMP staging table,
 * one JSON array of values per row (stageLine), which the upsert parses (from_json) and casts.
 */

export const STAGE_CONTENT = 'stage_content';

/** The staged text of a row: a JSON array of its values (lists as JSON text, NULL as null). */
export function stageLine(values: readonly CellValue[]): string {
  const out = new Array<string | number | null>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = v === undefined || v === null ? null : Array.isArray(v) ? JSON.stringify(v) : v;
  }
  return JSON.stringify(out);
}

/** The values of `row` in `writtenColumns(table)` order. */
export function rowValues(table: TableDef, row: Row): CellValue[] {
  return writtenColumns(table).map((c) => row[c.name] ?? null);
}

/** Element `i` of the parsed line `s.p`, cast to the column's type. */
function fromStage(c: ColumnDef, i: number): string {
  const v = `s.p[${i + 1}]`;
  switch (c.type) {
    case 'string':
      return v;
    case 'string_list':
      return `CAST(CAST(${v} AS JSON) AS VARCHAR[])`;
    default:
      return `CAST(${v} AS ${d.type(c.type)})`;
  }
}

function columnDdl(c: ColumnDef): string {
  return `${d.ident(c.name)} ${d.type(c.type)}${c.required ? ' NOT NULL' : ''}`;
}

/**
 * CREATE TABLE IF NOT EXISTS for every table. The fact table has no index on its key (event_id,
 * event_ts): uniqueness is kept by the single writer, which appends only the events
 * `existingKeysSql` does not find, inside the same transaction (an ART index would cost insert
 * throughput and live in memory; and a file made before the key included event_ts keeps working,
 * as no constraint names the key). The two small tables have primary keys, which their upserts
 * (ON CONFLICT) need.
 */
export function createTablesSql(): string[] {
  return TABLES.map((t) => {
    const pk = t === FACT_TABLE ? '' : `,\n  PRIMARY KEY (${t.key.map(d.ident).join(', ')})`;
    return `CREATE TABLE IF NOT EXISTS ${d.table(t.name)} (\n  ${t.columns.map(columnDdl).join(',\n  ')}${pk}\n)`;
  });
}

/** ALTER TABLE … ADD COLUMN for columns of `table` missing from `existing` (added columns are nullable). */
export function addMissingColumnsSql(table: TableDef, existing: ReadonlySet<string>): string[] {
  return table.columns
    .filter((c) => !existing.has(c.name))
    .map((c) => `ALTER TABLE ${d.table(table.name)} ADD COLUMN ${d.ident(c.name)} ${d.type(c.type)}`);
}

export function createViewsSql(): string[] {
  return viewDefinitions(d).map((v) => `CREATE OR REPLACE VIEW ${d.table(v.name)} AS\n${v.sql}`);
}

export function createStagesSql(): string[] {
  return [`CREATE OR REPLACE TEMP TABLE ${d.ident(STAGE_CONTENT)} (line VARCHAR NOT NULL)`];
}

/** The fact table's column names, in their physical order (the Appender writes by position). */
export function factColumnOrderSql(): string {
  return `SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = '${FACT_TABLE.name}' ORDER BY ordinal_position`;
}

/**
 * Which of the batch's events are stored already, as event keys (src/core/event-identity.ts:
 * `<event_id>@<event_ts µs>`); $1 is the batch's decimal ids joined by ','. An id stored with
 * another event_ts is another event (ids are reused after a sequence reset): its key differs.
 * `lo`/`hi` (the batch's smallest and largest id, inlined as literals) let DuckDB skip, by their
 * min/max statistics, every row group that cannot hold one of them: a stream batch reads the
 * newest row groups only, a backfill batch those of its own period — not the whole table.
 */
export function existingKeysSql(lo: bigint, hi: bigint): string {
  return [
    `SELECT CAST(event_id AS VARCHAR) || '@' || CAST(epoch_us(event_ts) AS VARCHAR) AS event_key FROM ${d.table(FACT_TABLE.name)}`,
    `WHERE event_id BETWEEN ${lo} AND ${hi} AND event_id IN (SELECT CAST(unnest(string_split($1, ',')) AS BIGINT))`,
  ].join('\n');
}

/** Upserts the staged content rows; a row never replaces a newer one (version_ms). */
export function upsertContentSql(): string {
  const cols = writtenColumns(CONTENT_DIM);
  const dim = d.table(CONTENT_DIM.name);
  const set = [...cols.filter((c) => c.name !== 'content_id').map((c) => c.name), 'updated_at'].map(
    (n) => `${d.ident(n)} = excluded.${d.ident(n)}`,
  );
  return [
    `INSERT INTO ${dim} (${[...cols.map((c) => d.ident(c.name)), 'updated_at'].join(', ')})`,
    `SELECT ${[...cols.map(fromStage), d.now()].join(', ')}`,
    `FROM (SELECT from_json(line, '["VARCHAR"]') AS p FROM ${d.ident(STAGE_CONTENT)}) AS s`,
    `ON CONFLICT (content_id) DO UPDATE SET ${set.join(', ')}`,
    `WHERE excluded.version_ms >= ${dim}.version_ms`,
  ].join('\n');
}

/**
 * Stores a partition's next offset, values inlined (so it can share a round trip with COMMIT):
 * the offset must be an int64 decimal and the partition an integer; the topic is quoted.
 */
export function storeOffsetSql(topic: string, partition: number, nextOffset: string): string {
  if (!/^-?\d{1,19}$/.test(nextOffset) || !Number.isInteger(partition))
    throw new Error(`not an offset: ${partition}@${nextOffset}`);
  return [
    `INSERT INTO ${d.table(OFFSETS_TABLE.name)} (topic, kafka_partition, next_offset, updated_at)`,
    `VALUES ('${topic.replaceAll("'", "''")}', ${partition}, ${nextOffset}, ${d.now()})`,
    `ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
  ].join('\n');
}

export function readOffsetsSql(): string {
  return `SELECT kafka_partition, CAST(next_offset AS VARCHAR) AS next_offset FROM ${d.table(OFFSETS_TABLE.name)} WHERE topic = $1`;
}
