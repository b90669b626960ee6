import { TRUNCATED_VALUE, UNAVAILABLE_VALUE } from '../../core/types.js';
import { isSafeLong, type AvroSink } from './avro-sink.js';
import { JsonCursor, NO_NUMBER } from './json-cursor.js';
import { columnType, type TableLayout } from './schema.js';
import { SourceWriter } from './source-writer.js';

/**
 * The CDC's JSON event text straight to Avro wire bytes, without JSON.parse, the intermediate Avro
 * object and avsc (the hot path of KAFKA_VALUE_FORMAT=avro). Compiled once per table layout and
 * schema ids, like RowJson: each column's `"name":` and Avro kind are fixed.
 *
 * Contract: `value`/`key` return exactly the bytes the generic path (JSON.parse → EventConverter →
 * AvroWriter, avro-encoder.ts) gives for the same text, or null when the text is not in the shape
 * this encoder reads — the envelope's keys in envelope.ts's order, each row's columns in the
 * layout's order (RowJson), a flat `source` — or holds a value the generic path would convert or
 * refuse in a way not mirrored here (the generic path then decides, errors included). An oversized
 * event (`truncated`) is always left to the generic path. test/cdc/avro-text-encoder.test.ts
 * compares both on every column type.
 *
 * Conversions mirrored (event-converter.ts): int8 strings become longs, `"NaN"`/`"Infinity"` floats
 * numbers, a placeholder in a numeric column null, bytea's base64 bytes (a placeholder's UTF-8).
 */

/** A column's Avro kind, chosen once per column. */
const K = { Str: 0, Int: 1, Long: 2, Float: 3, Double: 4, Bool: 5, Bytes: 6 } as const;
type K = (typeof K)[keyof typeof K];

interface Field {
  /** `{"name":` for the first column, `,"name":` for the others. */
  head: string;
  kind: K;
  /** `["null", T]` (value columns; a key column the table lacks) rather than `T`. */
  optional: boolean;
}

function kindOf(typeOid: number, plainString: boolean): K {
  if (plainString) return K.Str;
  const t = columnType(typeOid);
  const base = typeof t === 'string' ? t : Array.isArray(t) ? 'string' : t.type;
  switch (base) {
    case 'int':
      return K.Int;
    case 'long':
      return K.Long;
    case 'float':
      return K.Float;
    case 'double':
      return K.Double;
    case 'boolean':
      return K.Bool;
    case 'bytes':
      return K.Bytes;
    default:
      return K.Str;
  }
}

const isPlaceholder = (v: string) => v === UNAVAILABLE_VALUE || v === TRUNCATED_VALUE;

/** One scalar as the field's Avro value (false: not mirrored, give up). The cursor is on the value. */
function writeField(f: Field, cur: JsonCursor, sink: AvroSink): boolean {
  const c = cur.peek();
  if (c === 110 /* n */) {
    if (!f.optional || !cur.null()) return false;
    sink.byte(0);
    return true;
  }
  const branch = f.optional ? 2 : -1;
  switch (f.kind) {
    case K.Str: {
      const s = cur.string();
      if (s === undefined) return false;
      if (branch > 0) sink.byte(branch);
      sink.string(s);
      return true;
    }
    case K.Bool: {
      let b: number;
      if (c === 116 /* t */ && cur.skip('true')) b = 1;
      else if (c === 102 /* f */ && cur.skip('false')) b = 0;
      else if (branch > 0 && cur.string() !== undefined)
        b = -1; // a string (a placeholder): null, as asBoolean
      else return false;
      if (b < 0) {
        sink.byte(0);
        return true;
      }
      if (branch > 0) sink.byte(branch);
      sink.byte(b);
      return true;
    }
    case K.Bytes: {
      const s = cur.string();
      if (s === undefined) return false;
      if (branch > 0) sink.byte(branch);
      sink.bytes(isPlaceholder(s) ? Buffer.from(s, 'utf8') : Buffer.from(s, 'base64'));
      return true;
    }
    default:
      return writeNumber(f, cur, sink, branch);
  }
}

/** int/long/float/double from a JSON number or a string of one; a placeholder is null. */
function writeNumber(f: Field, cur: JsonCursor, sink: AvroSink, branch: number): boolean {
  let n: number;
  if (cur.peek() === 34 /* " */) {
    const s = cur.string();
    if (s === undefined) return false;
    if (isPlaceholder(s)) {
      if (branch < 0) return false;
      sink.byte(0);
      return true;
    }
    n = Number(s);
  } else {
    const v = cur.number();
    if (v === NO_NUMBER) return false;
    n = v;
  }
  // avsc's checks (IntType / LongType._write); a refusal is the generic path's to report.
  if (f.kind === K.Int && n !== (n | 0)) return false;
  if (f.kind === K.Long && (n % 1 !== 0 || !isSafeLong(n))) return false;
  if (branch > 0) sink.byte(branch);
  if (f.kind === K.Float) sink.float(n);
  else if (f.kind === K.Double) sink.double(n);
  else sink.long(n);
  return true;
}

/** A record `{"a":…,"b":…}` whose keys are `fields`' in order. */
function writeRow(fields: readonly Field[], cur: JsonCursor, sink: AvroSink): boolean {
  if (fields.length === 0) return cur.skip('{}');
  for (const f of fields) if (!cur.skip(f.head) || !writeField(f, cur, sink)) return false;
  return cur.skip('}');
}

/** `before` / `after`: null or the Value record. */
function writeImage(fields: readonly Field[], cur: JsonCursor, sink: AvroSink): boolean {
  if (cur.null()) {
    sink.byte(0);
    return true;
  }
  sink.byte(2);
  return writeRow(fields, cur, sink);
}

export class TextEncoder {
  private readonly columns: Field[];
  private readonly keyFields: Field[];
  private readonly source = new SourceWriter();

  constructor(
    layout: TableLayout,
    private readonly valueHeader: Buffer,
    private readonly keyHeader: Buffer | null,
    private readonly cur: JsonCursor,
    private readonly sink: AvroSink,
  ) {
    const plain = (name: string) => layout.stringColumns?.has(name) ?? false;
    const head = (name: string, i: number) => `${i === 0 ? '{' : ','}${JSON.stringify(name)}:`;
    this.columns = layout.columns.map((c, i) => ({
      head: head(c.name, i),
      kind: kindOf(c.typeOid, plain(c.name)),
      optional: true,
    }));
    const byName = new Map(layout.columns.map((c) => [c.name, c.typeOid]));
    this.keyFields = layout.primaryKey.map((name, i) => {
      const typeOid = byName.get(name);
      return {
        head: head(name, i),
        kind: typeOid === undefined ? K.Str : kindOf(typeOid, plain(name)),
        optional: typeOid === undefined,
      };
    });
  }

  /** The event's Avro value with its wire header, or null (the generic path decides). */
  value(text: string, op: string): Buffer | null {
    const { cur, sink } = this;
    cur.reset(text);
    sink.start(this.valueHeader, text.length * 3 + 64);
    if (!cur.skip('{"before":') || !writeImage(this.columns, cur, sink)) return null;
    if (!cur.skip(',"after":') || !writeImage(this.columns, cur, sink)) return null;
    if (!cur.skip(',"source":')) return null;
    if (!this.source.write(cur, sink)) return null;
    if (!cur.skip(',"op":') || cur.string() !== op || !cur.skip(',"ts_ms":')) return null;
    sink.string(op);
    const ts = cur.scalar();
    if (ts === null) sink.byte(0);
    else if (typeof ts === 'number' && !(ts % 1) && isSafeLong(ts)) {
      sink.byte(2);
      sink.long(ts);
    } else return null;
    if (!cur.skip('}') || cur.pos !== text.length) return null;
    sink.byte(0); // truncated: null
    return sink.take();
  }

  /** The key's Avro record with its wire header, or null (the generic path decides). */
  key(text: string): Buffer | null {
    if (this.keyHeader === null) return null;
    const { cur, sink } = this;
    cur.reset(text);
    sink.start(this.keyHeader, text.length * 3 + 64);
    if (!writeRow(this.keyFields, cur, sink) || cur.pos !== text.length) return null;
    return sink.take();
  }
}
