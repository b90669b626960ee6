import { protos } from '@google-cloud/bigquery-storage';
import type { SinkRecord } from '../../../core/sink-contract.js';
import { FACT_TABLE, FACT_VALUES, type CellValue, type LogicalType } from '../schema.js';
import { ProtoBuffer } from './proto-buffer.js';
import { dateDays, protoDescriptor, timestampMicros } from './row-encoding.js';

/**
 * The fact rows of a batch as the Storage Write API takes them — each record's values (schema.ts
 * FACT_VALUES) converted to BigQuery's proto mapping and written straight into one buffer — with
 * the same bytes as `encodeRows(FACT_TABLE, factWriterRows(records, loadedAt))` (row-encoding.ts,
 * protobufjs), which stays the reference: the test warehouse-bigquery-fact-encoder.test.ts holds
 * the two equal over every column type, NULLs, Unicode and int64s past 2^53. A column without a
 * value is left out, a REQUIRED one too (as protobufjs does: the service then refuses the row,
 * naming the column; the warehouse's `check` keeps such records out).
 *
 * Pure, apart from the descriptor cache. The layout is read from the table's proto descriptor
 * once; a column order or type it does not expect stops the module from loading.
 */

type Put = (w: ProtoBuffer, v: Exclude<CellValue, null>, memo: Memo) => void;
interface Memo {
  instants: Map<string, number>;
  dates: Map<string, number>;
}

/** Each column's tag (field number, wire type) and writer, in field order. */
interface Column {
  tag: number;
  get: ((r: SinkRecord) => CellValue) | null;
  put: Put;
  /** A repeated column (string_list): one tagged string per element. */
  list: boolean;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;

const PUT: Record<LogicalType, [number, Put]> = {
  int64: [WIRE_VARINT, (w, v) => (typeof v === 'number' ? w.int64Number(v) : w.int64Text(String(v)))],
  float64: [WIRE_FIXED64, (w, v) => w.double(Number(v))],
  string: [WIRE_LENGTH, (w, v) => w.string(Array.isArray(v) ? JSON.stringify(v) : String(v))],
  json: [WIRE_LENGTH, (w, v) => w.string(Array.isArray(v) ? JSON.stringify(v) : String(v))],
  timestamp: [WIRE_VARINT, (w, v, m) => w.int64Number(remember(m.instants, String(v), timestampMicros))],
  date: [WIRE_VARINT, (w, v, m) => w.int32(remember(m.dates, String(v), dateDays))],
  // Repeated, not packed: one tagged string per element (written by `encodeFactRows` itself).
  string_list: [WIRE_LENGTH, () => undefined],
};

const PROTO_TYPES: Record<LogicalType, string> = {
  int64: 'TYPE_INT64',
  float64: 'TYPE_DOUBLE',
  string: 'TYPE_STRING',
  json: 'TYPE_STRING',
  timestamp: 'TYPE_INT64',
  date: 'TYPE_INT32',
  string_list: 'TYPE_STRING',
};

function remember(cache: Map<string, number>, key: string, f: (s: string) => number): number {
  let v = cache.get(key);
  if (v === undefined) {
    v = f(key);
    cache.set(key, v);
  }
  return v;
}

const FieldType = protos.google.protobuf.FieldDescriptorProto.Type;
const getters = new Map(FACT_VALUES);
const fields = (protoDescriptor(FACT_TABLE).field ?? []).map((f) => ({
  name: String(f.name),
  number: Number(f.number),
  type: typeof f.type === 'number' ? FieldType[f.type] : String(f.type),
}));
const COLUMNS: Column[] = FACT_TABLE.columns.map((c, i) => {
  const f = fields[i];
  if (!f || f.name !== c.name || f.type !== PROTO_TYPES[c.type])
    throw new Error(`fact-encoder.ts: the proto field ${i + 1} is not ${c.name} (${PROTO_TYPES[c.type]})`);
  const get = getters.get(c.name) ?? null;
  if (!get && c.name !== 'loaded_at') throw new Error(`fact-encoder.ts: no value for the fact column ${c.name}`);
  const [wire, put] = PUT[c.type];
  // event_ts differs from row to row: parsed each time, not remembered.
  const own: Put = c.name === 'event_ts' ? (w, v) => w.int64Number(eventMicros(String(v))) : put;
  const list = c.type === 'string_list';
  return { tag: (f.number << 3) | wire, get, put: own, list };
});

/** The encoded rows: `rows[i]` is record i's message (views into one buffer). */
export interface EncodedFactRows {
  rows: Buffer[];
  bytes: number;
}

/**
 * `records` as proto rows of the fact table, `loaded_at` (the one column no record holds) the
 * given instant.
 */
export function encodeFactRows(records: readonly SinkRecord[], loadedAt: string): EncodedFactRows {
  const w = new ProtoBuffer(Math.max(1 << 16, records.length * 256));
  const memo: Memo = { instants: new Map(), dates: new Map() };
  const ends = new Array<number>(records.length);
  for (let r = 0; r < records.length; r++) {
    const record = records[r] as SinkRecord;
    for (const col of COLUMNS) {
      const v = col.get ? col.get(record) : loadedAt;
      if (v === null || v === undefined) continue;
      if (col.list) {
        if (Array.isArray(v))
          for (const item of v) {
            w.uint32(col.tag);
            w.string(item);
          }
        continue;
      }
      w.uint32(col.tag);
      col.put(w, v, memo);
    }
    ends[r] = w.pos;
  }
  const rows = new Array<Buffer>(records.length);
  let start = 0;
  for (let r = 0; r < records.length; r++) {
    const end = ends[r] as number;
    rows[r] = w.buf.subarray(start, end);
    start = end;
  }
  return { rows, bytes: w.pos };
}

const dayMs = new Map<number, number>();

/**
 * `timestampMicros` of an event time, without Date.parse for the processor's form
 * `YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z` (the date's start looked up once per date): the same number,
 * since Date.parse is that day's start plus the time of day. Any other form goes to timestampMicros.
 */
export function eventMicros(s: string): number {
  const n = s.length;
  if (n < 20 || n > 27 || s.charCodeAt(10) !== 84 || s.charCodeAt(n - 1) !== 90) return timestampMicros(s);
  if (s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58)
    return timestampMicros(s);
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  const h = digits(s, 11, 2);
  const mi = digits(s, 14, 2);
  const sec = digits(s, 17, 2);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59)
    return timestampMicros(s);
  let micros = 0;
  if (n > 20) {
    const f = n - 21; // fraction digits between '.' and 'Z'
    if (s.charCodeAt(19) !== 46 || f < 1 || f > 6) return timestampMicros(s);
    micros = digits(s, 20, f);
    if (micros < 0) return timestampMicros(s);
    for (let k = f; k < 6; k++) micros *= 10;
  }
  const key = y * 10000 + mo * 100 + d;
  let day = dayMs.get(key);
  if (day === undefined) {
    day = Date.parse(`${s.slice(0, 10)}T00:00:00Z`);
    if (dayMs.size >= 4096) dayMs.clear();
    dayMs.set(key, day);
  }
  if (!Number.isFinite(day)) return timestampMicros(s);
  return (day / 1000 + h * 3600 + mi * 60 + sec) * 1_000_000 + micros;
}

/** The decimal number of `len` ASCII digits at `at`, or -1 when one is not a digit. */
function digits(s: string, at: number, len: number): number {
  let v = 0;
  for (let i = at; i < at + len; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}
