import { OID, type ColumnType } from '../render.js';

/**
 * Debezium-compatible Avro schemas of a captured table, as Debezium's Avro converter names them
 * (docs/cdc.md "Avro"). Pure.
 *
 * - value (`<topic>-value`): record `Envelope` in namespace `<server>.<schema>.<table>` with
 *   `before`/`after` (optional record `Value` of the columns), `source` (record
 *   `io.debezium.connector.postgresql.Source`), `op`, `ts_ms`, and `truncated` (optional: set only
 *   on an event whose oversized values were replaced, src/cdc/oversize.ts);
 * - key (`<topic>-key`): record `Key` of the primary key columns (required), or none without a key.
 *
 * Value columns are optional (`["null", T]`, default null): pgoutput's Relation message carries no
 * nullability (Debezium reads NOT NULL from the catalogue). Column types follow the JSON rendering
 * (render.ts): int2/int4 → int, int8/oid → long, float4 → float, float8 → double, bool → boolean,
 * bytea → bytes, everything else (numeric, uuid, text, json, dates, timestamps, intervals, arrays,
 * enums) → string, with Debezium's `connect.name` where it names a string type. Names that Avro
 * refuses are adjusted as Debezium's `avro` adjustment mode does (`avroName`).
 */

export type AvroType = string | AvroObject | Array<string | AvroObject>;
export interface AvroObject {
  type: string | AvroObject;
  [k: string]: unknown;
}
export interface AvroField {
  name: string;
  type: AvroType;
  default?: unknown;
}
export interface AvroRecord {
  type: 'record';
  name: string;
  namespace?: string;
  fields: AvroField[];
  'connect.name'?: string;
  [k: string]: unknown;
}

/** A captured table's layout: what a Relation message (or the catalogue) says of it. */
export interface TableLayout {
  schema: string;
  table: string;
  columns: readonly ColumnType[];
  /** Primary key columns in key order (empty: no key). */
  primaryKey: readonly string[];
  /** Columns written as plain strings whatever their type (pseudonymised PII_FIELDS columns). */
  stringColumns?: ReadonlySet<string>;
}

export interface TableSchemas {
  key: AvroRecord | null;
  value: AvroRecord;
}

/** interval is not in render.ts's list (rendered as text there). */
const INTERVAL_OID = 1186;

const logical = (name: string): AvroObject => ({ type: 'string', 'connect.version': 1, 'connect.name': name });

/** The Avro type of a column (not null), by its PostgreSQL type OID. */
export function columnType(typeOid: number): AvroType {
  switch (typeOid) {
    case OID.int2:
      return { type: 'int', 'connect.type': 'int16' };
    case OID.int4:
      return 'int';
    case OID.int8:
    case OID.oid:
      return 'long';
    case OID.float4:
      return 'float';
    case OID.float8:
      return 'double';
    case OID.bool:
      return 'boolean';
    case OID.bytea:
      return 'bytes';
    case OID.uuid:
      return logical('io.debezium.data.Uuid');
    case OID.json:
    case OID.jsonb:
      return logical('io.debezium.data.Json');
    case OID.timestamptz:
      return logical('io.debezium.time.ZonedTimestamp');
    case INTERVAL_OID:
      return logical('io.debezium.time.Interval');
    default:
      return 'string';
  }
}

/** A name Avro accepts (`[A-Za-z_][A-Za-z0-9_]*`): other characters become `_`, a leading digit
 *  gets a `_` before it — Debezium's `field.name.adjustment.mode=avro`. */
export function avroName(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[0-9]/.test(s) || s === '' ? `_${s}` : s;
}

/** The Avro namespace of a table's records: `<server>.<schema>.<table>`, each part adjusted. */
export function tableNamespace(serverName: string, schema: string, table: string): string {
  return [serverName, schema, table].map(avroName).join('.');
}

const SOURCE: AvroRecord = {
  type: 'record',
  name: 'Source',
  namespace: 'io.debezium.connector.postgresql',
  fields: [
    { name: 'version', type: 'string' },
    { name: 'connector', type: 'string' },
    { name: 'name', type: 'string' },
    { name: 'ts_ms', type: 'long' },
    {
      name: 'snapshot',
      type: [
        {
          type: 'string',
          'connect.version': 1,
          'connect.parameters': { allowed: 'true,first,last,false,incremental' },
          'connect.default': 'false',
          'connect.name': 'io.debezium.data.Enum',
        },
        'null',
      ],
      default: 'false',
    },
    { name: 'db', type: 'string' },
    { name: 'sequence', type: ['null', 'string'], default: null },
    { name: 'schema', type: 'string' },
    { name: 'table', type: 'string' },
    { name: 'txId', type: ['null', 'long'], default: null },
    { name: 'lsn', type: ['null', 'long'], default: null },
  ],
  'connect.name': 'io.debezium.connector.postgresql.Source',
};

/** The value and key schemas of a table. Throws when two columns adjust to the same Avro name. */
export function tableSchemas(serverName: string, t: TableLayout): TableSchemas {
  const ns = tableNamespace(serverName, t.schema, t.table);
  const typeOf = (c: ColumnType) => (t.stringColumns?.has(c.name) ? 'string' : columnType(c.typeOid));
  const seen = new Set<string>();
  const fieldName = (column: string) => {
    const name = avroName(column);
    if (seen.has(name))
      throw new Error(`table ${t.schema}.${t.table}: columns adjust to the same Avro field name ${name}`);
    seen.add(name);
    return name;
  };
  const value: AvroRecord = {
    type: 'record',
    name: 'Value',
    fields: t.columns.map((c) => ({ name: fieldName(c.name), type: ['null', typeOf(c)].flat(), default: null })),
    'connect.name': `${ns}.Value`,
  };
  seen.clear();
  const byName = new Map(t.columns.map((c) => [c.name, c]));
  const key: AvroRecord | null =
    t.primaryKey.length === 0
      ? null
      : {
          type: 'record',
          name: 'Key',
          namespace: ns,
          fields: t.primaryKey.map((name) => {
            const c = byName.get(name);
            return { name: fieldName(name), type: c ? typeOf(c) : ['null', 'string'] };
          }),
          'connect.name': `${ns}.Key`,
        };
  return {
    key,
    value: {
      type: 'record',
      name: 'Envelope',
      namespace: ns,
      fields: [
        { name: 'before', type: ['null', value], default: null },
        { name: 'after', type: ['null', 'Value'], default: null },
        { name: 'source', type: SOURCE },
        { name: 'op', type: 'string' },
        { name: 'ts_ms', type: ['null', 'long'], default: null },
        { name: 'truncated', type: ['null', TRUNCATED], default: null },
      ],
      'connect.name': `${ns}.Envelope`,
    },
  };
}

/** The `truncated` block of an event cut to fit a Kafka record (oversize.ts); sizes are the JSON
 *  rendering's, `ref` the JSON text of where the original row is. */
const TRUNCATED: AvroObject = {
  type: 'record',
  name: 'Truncated',
  fields: [
    { name: 'fields', type: { type: 'array', items: 'string' } },
    { name: 'original_bytes', type: 'long' },
    { name: 'limit_bytes', type: 'long' },
    { name: 'ref', type: logical('io.debezium.data.Json') },
  ],
};
