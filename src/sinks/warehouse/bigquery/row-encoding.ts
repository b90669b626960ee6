import { adapt, type protos } from '@google-cloud/bigquery-storage';
import type { TableDef } from '../schema.js';
import type { CellValue, LogicalType, Row } from '../schema.js';
import { tableMetadata } from './schema-setup.js';

/**
 * Rows as the Storage Write API takes them: the proto2 descriptor of a table (derived by the
 * client library from the table's BigQuery schema, as the service expects it) and each row's
 * values in the encodings of BigQuery's proto mapping — TIMESTAMP as int64 microseconds since the
 * epoch, DATE as int32 days, JSON as its text, INT64 as a decimal string (exact past 2^53), a string
 * list as a repeated field. The managed writer's JSONWriter turns these objects into proto bytes.
 * Pure, apart from the descriptor being built once per table.
 */

/** A row for the managed writer's JSONWriter (its JSONObject): column → encoded value. */
export type JsonRow = { [column: string]: string | number | string[] };
type Descriptor = protos.google.protobuf.IDescriptorProto;

/**
 * One AppendRows request is at most 10 MB; rows are sent in requests of about this many bytes of
 * JSON (their proto encoding is smaller), leaving room for the request's own fields.
 */
export const APPEND_REQUEST_BYTES = 4 * 1024 * 1024;

const descriptors = new Map<string, Descriptor>();

/** The proto descriptor of `table`'s rows (every column, in table order). */
export function protoDescriptor(table: TableDef): Descriptor {
  let d = descriptors.get(table.name);
  if (!d) {
    const fields = tableMetadata(table).schema?.fields ?? [];
    const storageSchema = adapt.convertBigQuerySchemaToStorageTableSchema({ fields });
    d = adapt.convertStorageSchemaToProto2Descriptor(storageSchema, 'root');
    descriptors.set(table.name, d);
  }
  return d;
}

/** Microseconds since the epoch of an ISO-8601 instant, exactly (a Date keeps milliseconds only). */
export function timestampMicros(iso: string): string {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) throw new Error(`not an instant: ${iso}`);
  const fraction = /:\d{2}\.(\d+)/.exec(iso)?.[1] ?? '';
  const micros = BigInt(fraction.padEnd(6, '0').slice(0, 6));
  return (BigInt(Math.floor(ms / 1000)) * 1_000_000n + micros).toString();
}

/** Days since the epoch of a YYYY-MM-DD date. */
export function dateDays(date: string): number {
  const ms = Date.parse(`${date}T00:00:00Z`);
  if (!Number.isFinite(ms)) throw new Error(`not a date: ${date}`);
  return ms / 86_400_000;
}

function encode(type: LogicalType, v: CellValue | undefined): JsonRow[string] | null {
  if (type === 'string_list') return Array.isArray(v) ? v : [];
  if (v === null || v === undefined) return null;
  switch (type) {
    case 'timestamp':
      return timestampMicros(String(v));
    case 'date':
      return dateDays(String(v));
    case 'int64':
      return String(v);
    case 'float64':
      return Number(v);
    default:
      return Array.isArray(v) ? JSON.stringify(v) : String(v);
  }
}

/**
 * `row` (as schema.ts builds it) as a writer row of `table`; `stamps` fills the columns the
 * warehouse sets itself (`loaded_at`, `committed_at`: the append's time, as ISO instants).
 */
export function writerRow(table: TableDef, row: Row, stamps: Record<string, string> = {}): JsonRow {
  const out: JsonRow = {};
  for (const c of table.columns) {
    const v = c.name in stamps ? stamps[c.name] : row[c.name];
    const encoded = encode(c.type, v);
    if (encoded !== null) out[c.name] = encoded;
  }
  return out;
}

/** `items` split into consecutive chunks of at most `maxBytes` by `size` each (one item at least). */
export function chunkBySize<T>(items: readonly T[], size: (item: T) => number, maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = size(item);
    if (current.length > 0 && bytes + n > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += n;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Rows split into consecutive AppendRows requests of at most `maxBytes` of JSON each. */
export function appendChunks(rows: readonly JsonRow[], maxBytes = APPEND_REQUEST_BYTES): JsonRow[][] {
  return chunkBySize(rows, (r) => JSON.stringify(r).length, maxBytes);
}
