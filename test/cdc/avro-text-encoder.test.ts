import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AvroEncoder } from '../../src/cdc/avro/avro-encoder.js';
import { AvroSink } from '../../src/cdc/avro/avro-sink.js';
import { EventConverter } from '../../src/cdc/avro/event-converter.js';
import { JsonCursor } from '../../src/cdc/avro/json-cursor.js';
import { tableSchemas, type TableLayout } from '../../src/cdc/avro/schema.js';
import { TextEncoder } from '../../src/cdc/avro/text-encoder.js';
import { CDC_VERSION, emitChange, emitUpdate, sourcePrefix, type ChangeAt } from '../../src/cdc/envelope.js';
import { fitEvent } from '../../src/cdc/oversize.js';
import { OID } from '../../src/cdc/render.js';
import { RowJson } from '../../src/cdc/row-json.js';
import { createLogger } from '../../src/core/logger.js';
import { pseudonym, type Protect } from '../../src/core/pseudonym.js';
import { SchemaRegistry } from '../../src/kafka/schema-registry/registry.js';

/**
 * The CDC's Avro text encoder (src/cdc/avro/text-encoder.ts) writes, byte for byte, what the
 * encoder before it wrote for the same JSON records — JSON.parse → EventConverter → avsc's
 * `toBuffer` behind the Confluent header (the reference below is that code) — on rows of every
 * column type render.ts knows, NULLs, unchanged TOAST values, updates with before images and key
 * changes, deletes and their tombstones, pseudonymised columns, snapshot reads and an oversized
 * event (which the text encoder leaves to the generic path).
 */

type Raw = string | null | undefined;

/** Every type of render.ts's OID table, and a few it renders as text. */
const ALL: TableLayout = {
  schema: 'public',
  table: 'all_types',
  columns: [
    { name: 'id', typeOid: OID.int8 },
    { name: 'flag', typeOid: OID.bool },
    { name: 'blob', typeOid: OID.bytea },
    { name: 'small', typeOid: OID.int2 },
    { name: 'n4', typeOid: OID.int4 },
    { name: 'o', typeOid: OID.oid },
    { name: 'j', typeOid: OID.json },
    { name: 'f4', typeOid: OID.float4 },
    { name: 'f8', typeOid: OID.float8 },
    { name: 'day', typeOid: OID.date },
    { name: 'at', typeOid: OID.timestamp },
    { name: 'atz', typeOid: OID.timestamptz },
    { name: 'amount', typeOid: OID.numeric },
    { name: 'u', typeOid: OID.uuid },
    { name: 'jb', typeOid: OID.jsonb },
    { name: 'span', typeOid: 1186 },
    { name: 'body', typeOid: 25 },
    { name: 'first-name', typeOid: 1043 },
    { name: 'tags', typeOid: 1009 },
    { name: 'email', typeOid: 25 },
  ],
  primaryKey: ['id', 'n4'],
};

const LONG_TEXT = 'x'.repeat(63);
// prettier-ignore
const ROWS: Raw[][] = [
  ['1', 't', '\\x00ff10', '-32768', '2147483647', '4294967295', '{"a": [1, "b"]}', '1.5', '3.141592653589793', '2025-08-01', '2025-08-01 10:00:00.5', '2025-08-01 10:00:00.123456+00', '12345678901234567890.000001', '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d', '{"k": "v\\"q", "n": null}', 'P1Y2M3DT4H5M6S', 'plain', 'Zoë', '{a,"b c",NULL}', 'ann@example.com'],
  ['-9007199254740990', 'f', '\\x', '0', '-2147483648', '0', 'null', 'NaN', '-Infinity', '0001-01-01 BC', 'infinity', '2025-08-01 12:00:00+02', '-0.5', null, '[]', '-00:00:01', '', 'tab\there "quote" back\\slash\nnewline \u0001', '{}', 'bob@example.com'],
  ['9007199254740990', null, null, null, '1073741824', null, null, 'Infinity', '1e-300', null, null, '2025-08-01 10:00:00+05:30:15', null, null, null, null, `${LONG_TEXT}é`, `${LONG_TEXT}x`, null, null],
  ['1073741823', 't', '\\xdeadbeef', '7', '-1073741825', '7', '{}', '-0', '0', '2025-12-31', '2025-08-01 10:00:00', '2025-08-01 10:00:00+00', '0', '00000000-0000-0000-0000-000000000000', '{"emoji": "😀", "cjk": "漢字"}', '00:00:00', '😀 漢字 ✓', LONG_TEXT, '{"x"}', ''],
  ['42', undefined, undefined, '1', '2', '3', undefined, '2.5', '2.5', '2025-01-01', '2025-01-01 00:00:00', '2025-01-01 00:00:00+00', '1', '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7e', undefined, 'ends in \\', undefined, undefined, undefined, undefined],
];

const KEY = { id: 'k1', secret: 'a secret of the test, not a real one' };
const protect: ReadonlyMap<string, Protect> = new Map([['email', (v: string) => pseudonym(KEY, v)]]);

const at = (snapshot: string | null, txId: number | null, lsn: number, sequence?: string): ChangeAt => ({
  prefix: sourcePrefix({
    version: CDC_VERSION,
    connector: 'postgresql',
    name: 'engage',
    ts_ms: 1754042400123,
    snapshot: snapshot as 'false',
    db: 'engagement_db',
    schema: ALL.schema,
    table: ALL.table,
    txId,
  }),
  lsn,
  ...(sequence === undefined ? {} : { sequence }),
});

/** The records of snapshot reads, creates, updates (before image, key-only, key change), deletes. */
function records(layout: TableLayout, json: RowJson): Array<[string | null, string | null]> {
  const out: Array<[string | null, string | null]> = [];
  const emit = (_t: string, k: string | null, v: string | null) => void out.push([k, v]);
  const stream = (i: number) => at('false', 7811 + i, 24153560 + i * 1_000_000_007, `["24153488","${24153560 + i}"]`);
  ROWS.forEach((row, i) => {
    const other = ROWS[(i + 1) % ROWS.length] as Raw[];
    emitChange(emit, 't', json.key(row), 'r', 'null', json.row(row), at(i % 2 ? 'last' : 'true', null, 24153560), 1);
    emitChange(emit, 't', json.key(row), 'c', 'null', json.row(row), stream(i), 1754042400999 + i);
    emitUpdate(emit, 't', json.key(row), json.key(row), json.row(row), json.row(row), json.row(other), stream(i), 2);
    emitUpdate(emit, 't', json.key(row), json.key(other), json.row(row), json.row(row), json.row(other), stream(i), 3);
    const keyTuple = layout.columns.map((c, j) => (layout.primaryKey.includes(c.name) ? row[j] : undefined));
    emitUpdate(
      emit,
      't',
      json.key(keyTuple, true),
      json.key(row),
      'null',
      json.keyOnlyRow(keyTuple),
      json.row(row),
      stream(i),
      4,
    );
    emitChange(emit, 't', json.key(keyTuple, true), 'd', json.keyOnlyRow(keyTuple), 'null', stream(i), 5);
    emitChange(emit, 't', json.key(row), 'd', json.row(row), 'null', stream(i), 6);
  });
  return out;
}

test('the text encoder writes the bytes the JSON.parse → EventConverter → avsc path wrote', async () => {
  const registry = await SchemaRegistry.connect({ url: 'mock://avro-text-encoder-test', compatibility: 'BACKWARD' });
  const { avro, serde } = registry.serdes;
  for (const layout of [
    { ...ALL, stringColumns: new Set(['email']) },
    { ...ALL, table: 'no_key', primaryKey: [] },
  ] as TableLayout[]) {
    const schemas = tableSchemas('engage', layout);
    const valueWriter = await registry.writer(`t_${layout.table}`, 'value', schemas.value);
    const keyWriter = schemas.key ? await registry.writer(`t_${layout.table}`, 'key', schemas.key) : null;
    const typeOf = async (role: 'key' | 'value', id: number, schema: unknown) =>
      (
        await new avro.AvroSerializer(registry.client, role === 'key' ? serde.SerdeType.KEY : serde.SerdeType.VALUE, {
          useSchemaId: id,
        }).toType({ schemaType: 'AVRO', schema: JSON.stringify(schema) })
      )[0];
    const valueType = await typeOf('value', valueWriter.id, schemas.value);
    const keyType = keyWriter && (await typeOf('key', keyWriter.id, schemas.key));
    const converter = new EventConverter(layout);
    // The reference: the encoder as it stood before the text encoder (avsc's toBuffer, then the header).
    const reference = (key: string | null, value: string | null) => ({
      key:
        key === null || keyWriter === null || keyType === null
          ? null
          : Buffer.concat([keyWriter.header, keyType.toBuffer(converter.key(key))]),
      value:
        value === null
          ? null
          : Buffer.concat([valueWriter.header, valueType.toBuffer(converter.value(JSON.parse(value)))]),
    });
    const text = new TextEncoder(
      layout,
      valueWriter.header,
      keyWriter?.header ?? null,
      new JsonCursor(),
      new AvroSink(),
    );
    const encoder = new AvroEncoder(registry, 'engage', createLogger('warn', 'avro-text-encoder-test'));
    await encoder.streamLayout(`t_${layout.table}`, layout);
    await encoder.snapshotLayout(`t_${layout.table}`, layout);
    const json = new RowJson(layout.columns, layout.primaryKey, protect);
    const all = records(layout, json);
    assert.ok(
      all.some(([, v]) => v?.includes(pseudonym(KEY, 'ann@example.com'))),
      'pseudonyms in the rows',
    );
    let fast = 0;
    for (const [key, value] of all) {
      const want = reference(key, value);
      assert.deepEqual(encoder.encode(`t_${layout.table}`, key, value), want, `${key} ${value}`);
      if (value !== null) {
        const op = (JSON.parse(value) as { op: string }).op;
        assert.deepEqual(text.value(value, op), want.value, value);
        fast++;
      }
      if (key !== null) assert.deepEqual(text.key(key), want.key, key);
    }
    assert.equal(fast, ROWS.length * (layout.primaryKey.length ? 8 : 7), 'every event through the text encoder');

    // An oversized event carries `truncated`: the generic path writes it, the same bytes as before.
    const [key, value] = all[1] as [string, string];
    const fitted = fitEvent(key, value, 600);
    assert.ok(fitted, 'the event is cut');
    assert.equal(text.value(fitted.value, 'c'), null);
    assert.deepEqual(encoder.encode(`t_${layout.table}`, key, fitted.value), reference(key, fitted.value));
  }
});

test('a value the generic path refuses is left to it (the same INVALID_VALUE error)', async () => {
  const registry = await SchemaRegistry.connect({ url: 'mock://avro-text-encoder-refusal', compatibility: 'BACKWARD' });
  const encoder = new AvroEncoder(registry, 'engage', createLogger('warn', 'avro-text-encoder-test'));
  await encoder.streamLayout('t', ALL);
  const json = new RowJson(ALL.columns, ALL.primaryKey);
  const row = [...(ROWS[0] as Raw[])];
  row[0] = '9007199254740993'; // beyond what Avro's long holds in JavaScript
  const value = `{"before":null,"after":${json.row(row)},"source":${at('false', 1, 2).prefix}"lsn":2},"op":"c","ts_ms":1}`;
  assert.throws(
    () => encoder.encode('t', null, value),
    (err: { code?: string; message: string }) => {
      assert.equal(err.code, 'INVALID_VALUE');
      assert.match(err.message, /after\.id/);
      return true;
    },
  );
});
