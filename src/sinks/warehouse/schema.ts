import { eventKey } from '../../core/event-identity.js';
import type { EnrichedEvent } from '../../core/types.js';
import type { SinkRecord } from '../../core/sink-contract.js';

/**
 * The ONE warehouse schema, shared by the DuckDB and the BigQuery backends: the enriched-event fact
 * table, the content dimension and the sink's offsets table, in logical types that dialect.ts maps
 * to each engine, plus the pure functions that turn a batch into rows. Views live in views.ts.
 *
 * Every timestamp is an absolute instant in UTC (DuckDB TIMESTAMPTZ, BigQuery TIMESTAMP);
 * `event_date` and `hour_bucket` are the UTC date and hour computed by the processor.
 */

export type LogicalType = 'string' | 'int64' | 'float64' | 'timestamp' | 'date' | 'json' | 'string_list';

export interface ColumnDef {
  name: string;
  type: LogicalType;
  required: boolean;
  description: string;
}

export interface TableDef {
  name: string;
  description: string;
  columns: ColumnDef[];
  /** The logical key: unique in the table (enforced by how rows are written, not by an index). */
  key: string[];
  /** BigQuery: DAY partitioning on this DATE column. */
  partitionBy?: string;
  /** BigQuery: clustering columns. */
  clusterBy?: string[];
}

const col = (name: string, type: LogicalType, required: boolean, description: string): ColumnDef => ({
  name,
  type,
  required,
  description,
});

/** Add new columns at the END: the DuckDB bulk append writes by position (ALTER TABLE appends). */
export const FACT_TABLE: TableDef = {
  name: 'engagement_events_enriched',
  description:
    'One row per engagement event ((event_id, event_ts) unique: ids are reused after a sequence reset), enriched with its content; written by `engage sink warehouse`.',
  key: ['event_id', 'event_ts'],
  partitionBy: 'event_date',
  clusterBy: ['content_id'],
  columns: [
    col(
      'event_id',
      'int64',
      true,
      'engagement_events.id (BIGSERIAL); unique together with event_ts (a sequence reset reuses ids)',
    ),
    col('content_id', 'string', true, 'content.id (UUID)'),
    col(
      'user_id',
      'string',
      false,
      'engagement_events.user_id: its pseudonym when PII_FIELDS tags it (docs/security.md), else the UUID',
    ),
    col('event_type', 'string', true, 'play | pause | finish | click'),
    col('event_ts', 'timestamp', true, 'when the event happened'),
    col('duration_ms', 'int64', false, 'engagement duration in milliseconds'),
    col('device', 'string', false, 'device label'),
    col('raw_payload', 'json', false, 'the source raw_payload'),
    col('extra', 'json', false, 'source columns outside the original schema (schema drift)'),
    col('content_slug', 'string', true, 'content slug at enrichment time'),
    col('content_title', 'string', true, 'content title at enrichment time'),
    col('content_type', 'string', false, 'podcast | newsletter | video'),
    col('length_seconds', 'int64', false, 'content length in seconds'),
    col('publish_ts', 'timestamp', false, 'content publish time'),
    col('engagement_seconds', 'float64', false, 'duration_ms / 1000'),
    col('engagement_pct', 'float64', false, 'engagement_seconds / length_seconds * 100'),
    col('event_date', 'date', true, 'UTC date of event_ts (BigQuery partitioning column)'),
    col('hour_bucket', 'timestamp', true, 'UTC hour of event_ts'),
    col('source_ts_ms', 'int64', true, 'source commit time, ms since epoch'),
    col('processed_ts_ms', 'int64', true, 'enrichment time, ms since epoch'),
    col('origin', 'string', true, 'stream | backfill'),
    col(
      'quality_flags',
      'string_list',
      false,
      'data-quality flags set by the processor (implausible_duration: left out of the views)',
    ),
    col('schema_version', 'int64', true, 'enriched record schema version'),
    col(
      'kafka_partition',
      'int64',
      true,
      'enriched-topic partition the row was read from (first copy); -1 when written by a direct backfill',
    ),
    col(
      'kafka_offset',
      'int64',
      true,
      'enriched-topic offset the row was read from (first copy); -1 when written by a direct backfill',
    ),
    col('loaded_at', 'timestamp', true, 'when the warehouse committed the row'),
  ],
};

export const CONTENT_DIM: TableDef = {
  name: 'content_dim',
  description: 'One row per content item, upserted from the content fields of the events (newest enrichment wins).',
  key: ['content_id'],
  columns: [
    col('content_id', 'string', true, 'content.id (UUID)'),
    col('content_slug', 'string', true, 'slug'),
    col('content_title', 'string', true, 'title'),
    col('content_type', 'string', false, 'podcast | newsletter | video'),
    col('length_seconds', 'int64', false, 'length in seconds'),
    col('publish_ts', 'timestamp', false, 'publish time'),
    col(
      'version_ms',
      'int64',
      true,
      'processed_ts_ms of the event that carried these values; an older one never overwrites',
    ),
    col('updated_at', 'timestamp', true, 'when the warehouse last wrote the row'),
  ],
};

export const OFFSETS_TABLE: TableDef = {
  name: 'warehouse_offsets',
  description: 'The sink progress, written in the same transaction as the rows: next Kafka offset per topic partition.',
  key: ['topic', 'kafka_partition'],
  columns: [
    col('topic', 'string', true, 'Kafka topic'),
    col('kafka_partition', 'int64', true, 'Kafka partition'),
    col('next_offset', 'int64', true, 'next offset to read (last written + 1)'),
    col('updated_at', 'timestamp', true, 'when the offset was stored'),
  ],
};

export const TABLES: readonly TableDef[] = [FACT_TABLE, CONTENT_DIM, OFFSETS_TABLE];

/** Columns the writer fills from the batch; the others (`loaded_at`, `updated_at`) are set by the warehouse at commit. */
export const WRITE_TIME_COLUMNS: ReadonlySet<string> = new Set(['loaded_at', 'updated_at']);

/** A value as handed to a backend: decimal strings for int64 values that may exceed 2^53. */
export type CellValue = string | number | string[] | null;
export type Row = Record<string, CellValue>;

function json(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

/** How each written fact column is read from a record, in the fact table's column order. */
export const FACT_VALUES: ReadonlyArray<readonly [string, (r: SinkRecord) => CellValue]> = [
  ['event_id', (r) => r.event.event_id],
  ['content_id', (r) => r.event.content_id],
  ['user_id', (r) => r.event.user_id],
  ['event_type', (r) => r.event.event_type],
  ['event_ts', (r) => r.event.event_ts],
  ['duration_ms', (r) => r.event.duration_ms],
  ['device', (r) => r.event.device],
  ['raw_payload', (r) => json(r.event.raw_payload)],
  ['extra', (r) => json(r.event.extra)],
  ['content_slug', (r) => r.event.content_slug],
  ['content_title', (r) => r.event.content_title],
  ['content_type', (r) => r.event.content_type],
  ['length_seconds', (r) => r.event.length_seconds],
  ['publish_ts', (r) => r.event.publish_ts],
  ['engagement_seconds', (r) => r.event.engagement_seconds],
  ['engagement_pct', (r) => r.event.engagement_pct],
  ['event_date', (r) => r.event.event_date],
  ['hour_bucket', (r) => r.event.event_hour],
  ['source_ts_ms', (r) => r.event.source_ts_ms],
  ['processed_ts_ms', (r) => r.event.processed_ts_ms],
  ['origin', (r) => r.event.origin],
  ['quality_flags', (r) => r.event.quality_flags],
  ['schema_version', (r) => r.event.schema_version],
  ['kafka_partition', (r) => r.partition],
  ['kafka_offset', (r) => r.offset],
];

if (
  FACT_VALUES.map(([n]) => n).join() !==
  writtenColumns(FACT_TABLE)
    .map((c) => c.name)
    .join()
) {
  throw new Error('schema.ts: FACT_VALUES must list the written fact columns in table order');
}

/** The fact row of one record (every column but `loaded_at`). Pure. */
export function factRow(record: SinkRecord): Row {
  const row: Row = {};
  for (const [name, get] of FACT_VALUES) row[name] = get(record);
  return row;
}

/** The same values as `factRow`, as an array in `writtenColumns(FACT_TABLE)` order. Pure. */
export function factValues(record: SinkRecord): CellValue[] {
  return FACT_VALUES.map(([, get]) => get(record));
}

/**
 * The records to insert: the first record of each event (offset order), so a batch carrying an
 * event twice inserts it once. An event is its (event_id, event_ts) pair (src/core/event-identity.ts):
 * two records with one id and different event times are two events, both kept. Rows already in
 * the warehouse are skipped by the backend, on the same pair.
 */
export function uniqueByEventKey(records: readonly SinkRecord[]): SinkRecord[] {
  const seen = new Set<string>();
  const out: SinkRecord[] = [];
  for (const r of records) {
    const key = eventKey(r.event);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(r);
  }
  return out;
}

/**
 * One content_dim row per content id: the values of the record enriched last (highest
 * processed_ts_ms, then highest offset). Pure.
 */
export function contentRows(records: readonly SinkRecord[]): Row[] {
  const newest = new Map<string, EnrichedEvent>();
  for (const { event } of records) {
    const prev = newest.get(event.content_id);
    if (!prev || event.processed_ts_ms >= prev.processed_ts_ms) newest.set(event.content_id, event);
  }
  return [...newest.values()].map((e) => ({
    content_id: e.content_id,
    content_slug: e.content_slug,
    content_title: e.content_title,
    content_type: e.content_type,
    length_seconds: e.length_seconds,
    publish_ts: e.publish_ts,
    version_ms: e.processed_ts_ms,
  }));
}

/** Columns of `table` the writer supplies (in table order). */
export function writtenColumns(table: TableDef): ColumnDef[] {
  return table.columns.filter((c) => !WRITE_TIME_COLUMNS.has(c.name));
}
