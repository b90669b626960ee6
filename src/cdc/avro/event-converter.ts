import { TRUNCATED_VALUE, UNAVAILABLE_VALUE } from '../../core/types.js';
import { avroName, columnType, type TableLayout } from './schema.js';

/**
 * A change event's JSON rendering (envelope.ts, row-json.ts) as the Avro records of its table's
 * schemas (schema.ts), so both formats carry the same values. Pure; compiled once per table layout.
 * With KAFKA_VALUE_FORMAT=avro most records skip it (text-encoder.ts writes their bytes from the
 * text in one pass, mirroring these conversions byte for byte); it writes the rest (an oversized
 * event's, a value the text encoder leaves to it) and is the text encoder's reference in its test.
 *
 * Per column, from the JSON value: int8 strings become longs (exact up to 2^53: Avro's `long` in
 * JavaScript is a number; beyond, the encoder refuses the record), `"NaN"`/`"Infinity"` floats
 * numbers, bytea's base64 bytes. The placeholders `__debezium_unavailable_value` (unchanged TOAST)
 * and `__engage_truncated_value` (oversized) stay strings in string columns; in a bytes column they
 * are their UTF-8 bytes, as Debezium writes its placeholder there; in any other column (never
 * TOASTed: fixed-size types) null.
 */

type Convert = (v: unknown) => unknown;

interface Column {
  column: string;
  field: string;
  convert: Convert;
}

const isPlaceholder = (v: unknown) => v === UNAVAILABLE_VALUE || v === TRUNCATED_VALUE;

const asString: Convert = (v) => v;
const asNumber: Convert = (v) => (typeof v === 'number' || v === null ? v : isPlaceholder(v) ? null : Number(v));
const asBoolean: Convert = (v) => (typeof v === 'boolean' || v === null ? v : null);
const asBytes: Convert = (v) =>
  typeof v !== 'string' ? null : isPlaceholder(v) ? Buffer.from(v, 'utf8') : Buffer.from(v, 'base64');

function converterOf(typeOid: number, plainString: boolean): Convert {
  if (plainString) return asString;
  const t = columnType(typeOid);
  const base = typeof t === 'string' ? t : Array.isArray(t) ? 'string' : t.type;
  switch (base) {
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return asNumber;
    case 'boolean':
      return asBoolean;
    case 'bytes':
      return asBytes;
    default:
      return asString;
  }
}

/** A change event's JSON, parsed (envelope.ts). */
export interface EnvelopeJson {
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  source: Record<string, unknown>;
  op: string;
  ts_ms: number;
  truncated?: { fields: string[]; original_bytes: number; limit_bytes: number; ref: unknown };
}

export class EventConverter {
  private readonly columns: Column[];
  private readonly keyColumns: Column[];

  constructor(layout: TableLayout) {
    const compile = (name: string, typeOid: number): Column => ({
      column: name,
      field: avroName(name),
      convert: converterOf(typeOid, layout.stringColumns?.has(name) ?? false),
    });
    this.columns = layout.columns.map((c) => compile(c.name, c.typeOid));
    const byName = new Map(layout.columns.map((c) => [c.name, c.typeOid]));
    this.keyColumns = layout.primaryKey.map((name) => compile(name, byName.get(name) ?? 0));
  }

  static parse(json: string): EnvelopeJson {
    return JSON.parse(json) as EnvelopeJson;
  }

  /** The Avro Envelope of an event's JSON (`EventConverter.parse`). */
  value(e: EnvelopeJson): Record<string, unknown> {
    const s = e.source;
    const t = e.truncated;
    return {
      before: e.before === null ? null : this.row(this.columns, e.before),
      after: e.after === null ? null : this.row(this.columns, e.after),
      source: {
        version: s.version,
        connector: s.connector,
        name: s.name,
        ts_ms: s.ts_ms,
        snapshot: s.snapshot,
        db: s.db,
        sequence: s.sequence ?? null,
        schema: s.schema,
        table: s.table,
        txId: s.txId ?? null,
        lsn: s.lsn ?? null,
      },
      op: e.op,
      ts_ms: e.ts_ms,
      truncated: t
        ? { fields: t.fields, original_bytes: t.original_bytes, limit_bytes: t.limit_bytes, ref: JSON.stringify(t.ref) }
        : null,
    };
  }

  /** The Avro Key of a key's JSON text. */
  key(json: string): Record<string, unknown> {
    return this.row(this.keyColumns, JSON.parse(json) as Record<string, unknown>);
  }

  private row(columns: Column[], values: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const c of columns) out[c.field] = c.convert(values[c.column] ?? null);
    return out;
  }
}
