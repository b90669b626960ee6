import { adapt, type protos } from '@google-cloud/bigquery-storage';
import protobuf from 'protobufjs';
import descriptorExt from 'protobufjs/ext/descriptor/index.js';
import type { SinkRecord } from '../../../core/sink-contract.js';
import { FACT_TABLE, FACT_VALUES, type CellValue, type LogicalType, type TableDef } from '../schema.js';
import { tableMetadata } from './schema-setup.js';

/**
 * Rows as the Storage Write API takes them: the proto2 descriptor of a table (derived by the
 * client library from the table's BigQuery schema, as the service expects it) and each row's
 * values in the encodings of BigQuery's proto mapping — TIMESTAMP as int64 microseconds since the
 * epoch, DATE as int32 days, JSON as its text, INT64 as a number (as decimal text past 15 digits,
 * exact beyond 2^53), a string
 * list as a repeated field. `encodeRows` serializes them with protobufjs (the client library's own
 * proto runtime) from that descriptor; the managed writer's Writer sends the bytes. (Its JSONWriter
 * would do the same, after a deep copy and a per-key conversion of every row: twice the sink's CPU
 * per event, measured in bench/warehouse-bigquery.bench.ts.) The fact rows take a faster way to the
 * same bytes (fact-encoder.ts); `factWriterRows` + `encodeRows` are its reference, and encode the
 * commit log's rows. Pure, apart from per-table caches.
 */

/** A row in BigQuery's proto mapping: column → encoded value (a missing column is NULL). */
export type JsonRow = { [column: string]: string | number | string[] };
type Descriptor = protos.google.protobuf.IDescriptorProto;

/** One AppendRows request is at most 10 MB; rows go in requests of this many bytes at most. */
export const APPEND_REQUEST_BYTES = 4 * 1024 * 1024;

const descriptors = new Map<string, Descriptor>();
const types = new Map<string, protobuf.Type>();
const { DescriptorProto } = descriptorExt as unknown as {
  DescriptorProto: { fromObject(o: object): protobuf.Message };
};
const fromDescriptor = (protobuf.Type as unknown as { fromDescriptor(d: protobuf.Message): protobuf.Type })
  .fromDescriptor;

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

/** `rows` of `table` as proto bytes, one buffer per row, in the descriptor's message type. */
export function encodeRows(table: TableDef, rows: readonly JsonRow[]): Uint8Array[] {
  let type = types.get(table.name);
  if (!type) {
    type = fromDescriptor(DescriptorProto.fromObject(toJson(protoDescriptor(table))));
    types.set(table.name, type);
  }
  const t = type;
  return rows.map((r) => t.encode(r).finish());
}

function toJson(d: Descriptor): object {
  return typeof (d as { toJSON?: unknown }).toJSON === 'function' ? (d as { toJSON(): object }).toJSON() : d;
}

/**
 * Microseconds since the epoch of an ISO-8601 instant, exactly (a Date keeps milliseconds only;
 * a double holds every microsecond up to the year 2255 exactly).
 */
export function timestampMicros(iso: string): number {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) throw new Error(`not an instant: ${iso}`);
  const dot = iso.indexOf('.', 17);
  let micros = 0;
  if (dot > 0) {
    const digits = /^\d+/.exec(iso.slice(dot + 1))?.[0] ?? '';
    micros = Number(digits.padEnd(6, '0').slice(0, 6));
  }
  return Math.floor(ms / 1000) * 1_000_000 + micros;
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
      // A number is encoded directly; decimal text only past 15 digits (protobufjs parses text
      // through Long, several times slower), so a value beyond 2^53 stays exact.
      if (typeof v === 'number') return v;
      return String(v).length <= 15 ? Number(v) : String(v);
    case 'float64':
      return Number(v);
    default:
      return Array.isArray(v) ? JSON.stringify(v) : String(v);
  }
}

/**
 * The fact rows of `records` (schema.ts FACT_VALUES) as writer rows, `loaded_at` the given instant:
 * each row as `factRow` (schema.ts) has it, encoded per column type, without the intermediate row, and
 * with the batch's repeated instants and dates (hour, publish time, date) converted once.
 */
export function factWriterRows(records: readonly SinkRecord[], loadedAt: string): JsonRow[] {
  const memo = new Map<string, number>();
  const once = (key: string, f: (s: string) => number) => {
    let v = memo.get(key);
    if (v === undefined) {
      v = f(key.slice(2));
      memo.set(key, v);
    }
    return v;
  };
  const loaded = timestampMicros(loadedAt);
  return records.map((r) => {
    const out: JsonRow = {};
    for (const [name, get, type] of FACT_ENCODERS) {
      const v = get(r);
      if (v === null || v === undefined) {
        if (type === 'string_list') out[name] = [];
        continue;
      }
      if (type === 'timestamp')
        out[name] = name === 'event_ts' ? timestampMicros(String(v)) : once(`t:${String(v)}`, timestampMicros);
      else if (type === 'date') out[name] = once(`d:${String(v)}`, dateDays);
      else out[name] = encode(type, v) as JsonRow[string];
    }
    out.loaded_at = loaded;
    return out;
  });
}

const FACT_ENCODERS = FACT_VALUES.map(([name, get]) => {
  const type = FACT_TABLE.columns.find((c) => c.name === name)?.type ?? 'string';
  return [name, get, type] as const;
});

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

/** Encoded rows split into consecutive AppendRows requests of at most `maxBytes` each. */
export function appendChunks(rows: readonly Uint8Array[], maxBytes = APPEND_REQUEST_BYTES): Uint8Array[][] {
  return chunkBySize(rows, (r) => r.length, maxBytes);
}
