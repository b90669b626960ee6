import type protobuf from 'protobufjs';
import type { Row } from './fake-bigquery.js';

/**
 * The rows of the Storage Write API fake (fake-bigquery-storage.ts): how an appended row is checked,
 * as the service checks it before answering, and how a stored row becomes the REST fake's row when
 * a table is read.
 *
 * The check reads the proto wire format of each row against the writer schema and the table:
 * every field well-formed (its wire type the one its declared type takes, lengths and varints
 * within the row), a REQUIRED column of the table present, no field of the writer schema that the
 * table lacks, JSON columns parsable. Fields the writer schema does not declare are skipped, as a
 * proto decoder skips them. The row is kept as its bytes and decoded (protobufjs, the writer
 * schema's type) only when read: the fake then holds ~200 B a row rather than a decoded object,
 * which made the bench's fake spend a fifth of its time in GC (docs/warehouse.md, "Where it goes").
 */

export type Field = { name: string; type: string; mode?: string };
export type LazyRow = () => Row;

const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const FIXED32 = 5;

/** The wire type each proto field type is written with (a packed repeated scalar may also come as LENGTH). */
const WIRE: Record<string, number> = {
  double: FIXED64,
  float: FIXED32,
  int64: VARINT,
  uint64: VARINT,
  int32: VARINT,
  fixed64: FIXED64,
  fixed32: FIXED32,
  bool: VARINT,
  string: LENGTH,
  bytes: LENGTH,
  uint32: VARINT,
  enum: VARINT,
  sfixed32: FIXED32,
  sfixed64: FIXED64,
  sint32: VARINT,
  sint64: VARINT,
};

interface Slot {
  name: string;
  wire: number;
  /** A repeated scalar, which may come packed. */
  packable: boolean;
  json: boolean;
  /** Not a column of the table: a row holding it is refused. */
  unknown: boolean;
  /** Bit of a REQUIRED column (0 when optional). */
  requiredBit: number;
}

/** Checks rows of one writer schema (`type`) for one table (`fields`); throws the service's reason. */
export class RowChecker {
  /** By field number. */
  private readonly slots: Array<Slot | undefined> = [];
  private readonly allRequired: number;
  private missingAlways: string | null = null;

  constructor(
    readonly type: protobuf.Type,
    readonly fields: Map<string, Field>,
  ) {
    const required = [...fields.values()].filter((f) => f.mode === 'REQUIRED');
    if (required.length > 30) throw new Error('the fake checks at most 30 REQUIRED columns');
    let all = 0;
    required.forEach((f, i) => {
      const pf = type.fields[f.name];
      if (!pf) this.missingAlways ??= f.name;
      else all |= 1 << i;
    });
    this.allRequired = all;
    for (const pf of type.fieldsArray) {
      const f = fields.get(pf.name);
      const bit = required.findIndex((r) => r.name === pf.name);
      this.slots[pf.id] = {
        name: pf.name,
        wire: WIRE[pf.type] ?? LENGTH,
        packable: pf.repeated && WIRE[pf.type] !== undefined && WIRE[pf.type] !== LENGTH,
        json: f?.type === 'JSON',
        unknown: !f,
        requiredBit: bit >= 0 ? 1 << bit : 0,
      };
    }
  }

  /** Throws an Error naming the problem when the service would refuse the row. */
  check(bytes: Buffer): void {
    if (this.missingAlways) throw new Error(`Required field ${this.missingAlways} is missing`);
    const end = bytes.length;
    let pos = 0;
    let seen = 0;
    const varint = (): number => {
      const first = bytes[pos];
      if (first !== undefined && first < 128) {
        pos++;
        return first;
      }
      let v = 0;
      for (let shift = 0; ; shift += 7) {
        if (pos >= end) throw new Error('row truncated: a varint runs past its end');
        const b = bytes[pos++] as number;
        if (shift < 28) v |= (b & 127) << shift;
        if (b < 128) return v >>> 0;
        if (shift >= 63) throw new Error('row malformed: a varint longer than 10 bytes');
      }
    };
    while (pos < end) {
      const tag = varint();
      const wire = tag & 7;
      const slot = this.slots[tag >>> 3];
      if (slot) {
        if (slot.unknown) throw new Error(`field ${slot.name} is not in the table schema`);
        if (wire !== slot.wire && !(slot.packable && wire === LENGTH))
          throw new Error(`field ${slot.name}: wire type ${wire} where its type takes ${slot.wire}`);
        seen |= slot.requiredBit;
      }
      if (wire === VARINT) varint();
      else if (wire === FIXED64) pos += 8;
      else if (wire === FIXED32) pos += 4;
      else if (wire === LENGTH) {
        const len = varint();
        if (pos + len > end) throw new Error('row truncated: a field runs past its end');
        if (slot?.json) JSON.parse(bytes.toString('utf8', pos, pos + len));
        pos += len;
      } else throw new Error(`row malformed: wire type ${wire}`);
      if (pos > end) throw new Error('row truncated: a field runs past its end');
    }
    if (seen !== this.allRequired) {
      const missing = this.slots.find((s) => s && s.requiredBit && !(seen & s.requiredBit));
      throw new Error(`Required field ${missing?.name ?? '?'} is missing`);
    }
  }

  /** The stored row, decoded when first read. */
  stored(bytes: Buffer): LazyRow {
    return lazy(() =>
      toTableRow(this.type.toObject(this.type.decode(bytes), { longs: String, arrays: false }), this.fields),
    );
  }
}

/** `make` run once, on the first call (a stored row converted only when read). */
function lazy(make: () => Row): LazyRow {
  let row: Row | undefined;
  return () => (row ??= make());
}

/**
 * A decoded proto row as the REST fake keeps rows: TIMESTAMP (int64 µs) as an ISO string, DATE
 * (int32 days) as YYYY-MM-DD, INT64 as a decimal string, a REPEATED column as an array, a missing
 * column as NULL. (The row was checked when appended.)
 */
function toTableRow(obj: Record<string, unknown>, fields: Map<string, Field>): Row {
  const row: Row = {};
  for (const [name, value] of Object.entries(obj)) {
    const f = fields.get(name);
    if (f?.type === 'TIMESTAMP') row[name] = new Date(Math.floor(Number(value) / 1000)).toISOString();
    else if (f?.type === 'DATE') row[name] = new Date(Number(value) * 86_400_000).toISOString().slice(0, 10);
    else row[name] = value;
  }
  for (const f of fields.values()) {
    if (f.mode === 'REPEATED' && row[f.name] === undefined) row[f.name] = [];
    if (!(f.name in row)) row[f.name] = null;
  }
  return row;
}
