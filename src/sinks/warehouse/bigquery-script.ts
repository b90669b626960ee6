import type { SinkBatch, SinkRecord } from '../../core/sink-contract.js';
import { chunkBySize } from './bigquery/row-encoding.js';
import { bigQueryParamType, type Dialect } from './dialect.js';
import {
  CONTENT_DIM,
  contentRows,
  FACT_TABLE,
  factRow,
  OFFSETS_TABLE,
  uniqueByEventKey,
  writtenColumns,
  type CellValue,
  type ColumnDef,
  type TableDef,
} from './schema.js';

/**
 * What the BigQuery backend sends for one batch: ONE multi-statement query job whose script runs
 * a transaction —
 *   MERGE fact    USING UNNEST(@rows)    ON event_id AND event_ts (the event's identity, src/core/
 *                 event-identity.ts; and the batch's event_date range, to prune partitions)
 *                                        WHEN NOT MATCHED THEN INSERT
 *   MERGE content USING UNNEST(@content) ON content_id WHEN MATCHED AND newer THEN UPDATE / INSERT
 *   MERGE offsets USING UNNEST(@offsets) ON topic, partition            UPDATE / INSERT
 *   COMMIT
 * — with the rows as typed query parameters. Pure functions; the sink and the fake BigQuery of the
 * tests agree on this shape.
 *
 * A batch larger than `maxParamBytes` is split into chunks in offset order, each its own
 * transaction storing the offset after its own last record, so every commit is still "rows and
 * the offset that covers exactly them".
 */

export interface ParamType {
  type: string;
  arrayType?: ParamType;
  structTypes?: Array<{ name: string; type: ParamType }>;
}

/** A query-parameter value; NULL is a value without `value`. */
export interface ParamValue {
  value?: string;
  arrayValues?: ParamValue[];
  structValues?: Record<string, ParamValue>;
}

export interface QueryParameter {
  name: string;
  parameterType: ParamType;
  parameterValue: ParamValue;
}

export interface WriteJob {
  query: string;
  params: QueryParameter[];
  rows: number;
  /** The offset this job stores for the partition. */
  nextOffset: string;
}

/** Request size of BigQuery is 10 MB; parameters are kept well below it. */
export const DEFAULT_MAX_PARAM_BYTES = 4 * 1024 * 1024;

function cellValue(c: ColumnDef, v: CellValue | undefined): ParamValue {
  if (c.type === 'string_list') return { arrayValues: (Array.isArray(v) ? v : []).map((x) => ({ value: x })) };
  if (v === null || v === undefined) return {};
  return { value: Array.isArray(v) ? JSON.stringify(v) : String(v) };
}

function structType(cols: ColumnDef[]): ParamType {
  return { type: 'STRUCT', structTypes: cols.map((c) => ({ name: c.name, type: bigQueryParamType(c.type) })) };
}

function rowsParam(name: string, table: TableDef, rows: Array<Record<string, CellValue>>): QueryParameter {
  const cols = writtenColumns(table);
  return {
    name,
    parameterType: { type: 'ARRAY', arrayType: structType(cols) },
    parameterValue: {
      arrayValues: rows.map((r) => ({
        structValues: Object.fromEntries(cols.map((c) => [c.name, cellValue(c, r[c.name])])),
      })),
    },
  };
}

const scalar = (name: string, type: string, value: string): QueryParameter => ({
  name,
  parameterType: { type },
  parameterValue: { value },
});

function insertClause(table: TableDef, d: Dialect): string {
  const cols = writtenColumns(table).map((c) => c.name);
  const stamp = table === FACT_TABLE ? 'loaded_at' : 'updated_at';
  return `INSERT (${[...cols, stamp].map(d.ident).join(', ')}) VALUES (${[...cols.map((c) => `s.${d.ident(c)}`), d.now()].join(', ')})`;
}

/** MERGE of `@content` into content_dim: newest enrichment wins (version_ms), missing ids inserted. */
function contentMerge(d: Dialect): string[] {
  const contentSet = [
    ...writtenColumns(CONTENT_DIM)
      .filter((c) => c.name !== 'content_id')
      .map((c) => `${d.ident(c.name)} = s.${d.ident(c.name)}`),
    `updated_at = ${d.now()}`,
  ];
  return [
    `MERGE ${d.table(CONTENT_DIM.name)} AS t`,
    `USING (SELECT * FROM UNNEST(@content)) AS s`,
    `ON t.content_id = s.content_id`,
    `WHEN MATCHED AND s.version_ms >= t.version_ms THEN UPDATE SET ${contentSet.join(', ')}`,
    `WHEN NOT MATCHED THEN ${insertClause(CONTENT_DIM, d)};`,
  ];
}

/** The transaction script; identical for every batch of a table set (only parameters change). */
export function writeScript(d: Dialect): string {
  return [
    `DECLARE inserted_rows INT64 DEFAULT 0;`,
    `BEGIN TRANSACTION;`,
    `MERGE ${d.table(FACT_TABLE.name)} AS t`,
    `USING (SELECT * FROM UNNEST(@rows)) AS s`,
    `ON t.event_id = s.event_id AND t.event_ts = s.event_ts AND t.event_date BETWEEN @min_date AND @max_date`,
    `WHEN NOT MATCHED THEN ${insertClause(FACT_TABLE, d)};`,
    `SET inserted_rows = @@row_count;`,
    ...contentMerge(d),
    `MERGE ${d.table(OFFSETS_TABLE.name)} AS t`,
    `USING (SELECT * FROM UNNEST(@offsets)) AS s`,
    `ON t.topic = s.topic AND t.kafka_partition = s.kafka_partition`,
    `WHEN MATCHED THEN UPDATE SET next_offset = s.next_offset, updated_at = ${d.now()}`,
    `WHEN NOT MATCHED THEN ${insertClause(OFFSETS_TABLE, d)};`,
    `COMMIT TRANSACTION;`,
    `SELECT inserted_rows;`,
  ].join('\n');
}

/**
 * The content rows' upsert alone (the Storage Write API backend, for content it has not written
 * yet): one MERGE statement of a small unpartitioned table, idempotent (newest version wins).
 */
export function contentJob(
  d: Dialect,
  rows: Array<Record<string, CellValue>>,
): { query: string; params: QueryParameter[] } {
  return { query: contentMerge(d).join('\n'), params: [rowsParam('content', CONTENT_DIM, rows)] };
}

export function readOffsetsQuery(d: Dialect): string {
  return `SELECT kafka_partition, CAST(next_offset AS STRING) AS next_offset FROM ${d.table(OFFSETS_TABLE.name)} WHERE topic = @topic`;
}

function jobFor(d: Dialect, batch: SinkBatch, records: SinkRecord[], nextOffset: string): WriteJob {
  const rows = records.map(factRow);
  const dates = rows.map((r) => String(r.event_date)).sort();
  const params: QueryParameter[] = [
    rowsParam('rows', FACT_TABLE, rows),
    rowsParam('content', CONTENT_DIM, contentRows(records)),
    rowsParam('offsets', OFFSETS_TABLE, [
      { topic: batch.topic, kafka_partition: batch.partition, next_offset: nextOffset },
    ]),
    // An empty batch matches no date: the range only prunes, it never decides alone.
    scalar('min_date', 'DATE', dates[0] ?? '1970-01-01'),
    scalar('max_date', 'DATE', dates[dates.length - 1] ?? '1970-01-01'),
  ];
  return { query: writeScript(d), params, rows: rows.length, nextOffset };
}

/** The jobs that write `batch`, in order (one, unless the batch exceeds `maxParamBytes`). */
export function writeJobs(d: Dialect, batch: SinkBatch, maxParamBytes = DEFAULT_MAX_PARAM_BYTES): WriteJob[] {
  const records = uniqueByEventKey(batch.records);
  if (records.length === 0) return [jobFor(d, batch, [], batch.nextOffset)];
  const chunks = chunkBySize(records, (r) => JSON.stringify(r.event).length * 2, maxParamBytes);
  return chunks.map((chunk, i) => {
    const last = chunk[chunk.length - 1] as SinkRecord;
    const next = i === chunks.length - 1 ? batch.nextOffset : (BigInt(last.offset) + 1n).toString();
    return jobFor(d, batch, chunk, next);
  });
}
