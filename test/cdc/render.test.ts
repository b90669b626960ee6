import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emitChange, emitUpdate, envelopeJson, sourcePrefix, type Emit } from '../../src/cdc/envelope.js';
import { formatLsn, lsnTextToNumber, parseLsn } from '../../src/cdc/lsn.js';
import {
  kindOf,
  OID,
  renderValue,
  timestamptzToIso,
  UNAVAILABLE_VALUE,
  valueJson,
  type RawValue,
} from '../../src/cdc/render.js';
import { RowJson } from '../../src/cdc/row-json.js';
import { TextPgoutputPlugin } from '../../src/cdc/pgoutput-rows.js';
import { PgoutputPlugin } from 'pg-logical-replication';
import type { ChangeEvent } from '../../src/core/types.js';

/** The CDC's pure parts: type rendering, LSNs, the envelope's serialisation and keys. */

test('renderValue maps each PostgreSQL text form to the documented JSON', () => {
  const cases: Array<[string, number, string | null | undefined, unknown]> = [
    ['int2', OID.int2, '-7', -7],
    ['int4', OID.int4, '2147483647', 2147483647],
    ['int8 beyond 2^53 stays exact', OID.int8, '9007199254740993', '9007199254740993'],
    ['numeric keeps its digits', OID.numeric, '12345678901234567890.000000001', '12345678901234567890.000000001'],
    ['float8', OID.float8, '1.5', 1.5],
    ['float8 NaN', OID.float8, 'NaN', 'NaN'],
    ['float4 Infinity', OID.float4, '-Infinity', '-Infinity'],
    ['bool true', OID.bool, 't', true],
    ['bool false', OID.bool, 'f', false],
    ['uuid', OID.uuid, '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d', '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d'],
    ['timestamptz micros', OID.timestamptz, '2025-08-01 10:00:00.123456+00', '2025-08-01T10:00:00.123456Z'],
    ['timestamptz whole seconds', OID.timestamptz, '2025-08-01 10:00:00+00', '2025-08-01T10:00:00Z'],
    ['timestamptz infinity', OID.timestamptz, 'infinity', 'infinity'],
    ['timestamp without zone', OID.timestamp, '2025-08-01 10:00:00.5', '2025-08-01T10:00:00.5'],
    ['date', OID.date, '2025-08-01', '2025-08-01'],
    ['jsonb as JSON text', OID.jsonb, '{"a": [1, 2]}', '{"a": [1, 2]}'],
    ['json as JSON text', OID.json, '[ 1 ]', '[ 1 ]'],
    ['bytea as base64', OID.bytea, '\\x0102ff', Buffer.from([1, 2, 255]).toString('base64')],
    ['unknown type: text form', 1186, 'P1DT2H', 'P1DT2H'],
    ['NULL', OID.int4, null, null],
    ['unchanged TOAST', OID.jsonb, undefined, UNAVAILABLE_VALUE],
  ];
  for (const [name, oid, text, want] of cases) assert.deepEqual(renderValue(oid, text), want, name);
});

test('valueJson is exactly JSON.stringify(renderValue(...)) for every type class', () => {
  const cases: Array<[number, RawValue]> = [
    [OID.int2, '-7'],
    [OID.int4, '0'],
    [OID.int4, '2147483647'],
    [OID.oid, '4294967295'],
    [OID.int8, '-9223372036854775808'],
    [OID.numeric, '-0.000100'],
    [OID.numeric, 'NaN'],
    [OID.uuid, '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d'],
    [OID.date, '2025-08-01'],
    [OID.date, 'infinity'],
    [OID.date, '0044-03-15 BC'],
    [OID.float8, '1.5'],
    [OID.float8, '-1e+100'],
    [OID.float4, 'NaN'],
    [OID.float8, 'Infinity'],
    [OID.bool, 't'],
    [OID.bool, 'f'],
    [OID.timestamptz, '2025-08-01 10:00:00.123456+00'],
    [OID.timestamptz, '2025-08-01 10:00:00+00'],
    [OID.timestamptz, '2025-08-01 12:00:00.5+02'],
    [OID.timestamptz, '2025-08-01 10:00:00.1-03:30'],
    [OID.timestamptz, '12345-01-01 00:00:00+00'],
    [OID.timestamptz, 'infinity'],
    [OID.timestamptz, '-infinity'],
    [OID.timestamptz, '0001-01-01 00:00:00+00 BC'],
    [OID.timestamp, '2025-08-01 10:00:00.5'],
    [OID.bytea, '\\x0102ff'],
    [25, 'plain'],
    [25, 'quote " backslash \\ newline \n tab \t nul \u0000 é 😀 \ud800'],
    [OID.jsonb, '{"a": [1, "x\\"y"]}'],
    [1186, 'P1DT2H'],
    [OID.int4, null],
    [OID.jsonb, undefined],
    [25, ''],
  ];
  for (const [oid, text] of cases) {
    assert.equal(valueJson(kindOf(oid), oid, text), JSON.stringify(renderValue(oid, text)), `${oid} ${String(text)}`);
  }
});

test('timestamptzToIso converts any offset to UTC and keeps the fraction digit for digit', () => {
  assert.equal(timestamptzToIso('2025-08-01 12:00:00.000123+02'), '2025-08-01T10:00:00.000123Z');
  assert.equal(timestamptzToIso('2025-01-01 00:30:00-05:30'), '2025-01-01T06:00:00Z');
  assert.equal(timestamptzToIso('2024-12-31 23:59:59.9+00:00:30'), '2024-12-31T23:59:29.9Z');
  assert.equal(timestamptzToIso('0099-03-01 00:00:00+00'), '0099-03-01T00:00:00Z');
  assert.equal(timestamptzToIso('2025-03-01 01:00:00+01'), '2025-03-01T00:00:00Z');
  assert.equal(timestamptzToIso('0001-01-01 00:00:00+00 BC'), '0001-01-01 00:00:00+00 BC');
});

test('rows: column order kept, missing (TOAST) values marked, key-only before images', () => {
  const cols = [
    { name: 'id', typeOid: OID.int8 },
    { name: 'n', typeOid: OID.int4 },
    { name: 'payload', typeOid: OID.jsonb },
  ];
  const rows = new RowJson(cols, ['id']);
  assert.deepEqual(JSON.parse(rows.row(['1', '2', undefined])), { id: '1', n: 2, payload: UNAVAILABLE_VALUE });
  assert.deepEqual(Object.keys(JSON.parse(rows.row(['1', null, null])) as object), ['id', 'n', 'payload']);
  assert.deepEqual(JSON.parse(rows.keyOnlyRow(['5', null, null])), { id: '5', n: null, payload: null });
  assert.deepEqual(JSON.parse(rows.keyOnlyRow(['5', undefined, undefined])), { id: '5', n: null, payload: null });
  // Byte for byte the JSON.stringify of the rendered row.
  const values = ['9007199254740993', '-3', '{"k": "v \\"q\\""}'];
  const rendered = Object.fromEntries(cols.map((c, i) => [c.name, renderValue(c.typeOid, values[i])]));
  assert.equal(rows.row(values), JSON.stringify(rendered));
  assert.equal(new RowJson([], []).row([]), '{}');
});

test('LSNs: parse, format, order, number', () => {
  assert.equal(parseLsn('16/B374D848'), (0x16n << 32n) | 0xb374d848n);
  assert.equal(formatLsn(parseLsn('0/1DE3460')), '0/1DE3460');
  assert.ok(parseLsn('1/0') > parseLsn('0/FFFFFFFF'));
  assert.equal(lsnTextToNumber('16/B374D848'), Number(parseLsn('16/B374D848')));
  assert.throws(() => parseLsn('nope'));
});

const rowJson = new RowJson(
  [
    { name: 'id', typeOid: OID.int8 },
    { name: 'device', typeOid: 25 },
  ],
  ['id'],
);
const fixed = {
  version: 'v',
  connector: 'postgresql' as const,
  name: 'engage',
  ts_ms: 5,
  snapshot: 'false' as const,
  db: 'd',
  schema: 'public',
  table: 't',
  txId: 9,
};

test('envelopeJson is exactly JSON.stringify of the ChangeEvent', () => {
  const at = { prefix: sourcePrefix(fixed), lsn: 123, sequence: '["100","123"]' };
  const event: ChangeEvent = {
    before: null,
    after: { id: '7', device: 'ios "x"' },
    source: { ...fixed, lsn: 123, sequence: '["100","123"]' },
    op: 'c',
    ts_ms: 42,
  };
  assert.equal(envelopeJson('c', 'null', rowJson.row(['7', 'ios "x"']), at, 42), JSON.stringify(event));
  const snap = { ...fixed, snapshot: 'last' as const, txId: null };
  assert.equal(
    envelopeJson('r', 'null', '{"id":"1"}', { prefix: sourcePrefix(snap), lsn: null }, 1),
    JSON.stringify({ before: null, after: { id: '1' }, source: { ...snap, lsn: null }, op: 'r', ts_ms: 1 }),
  );
});

test('keys, tombstones and primary-key changes', () => {
  const at = { prefix: sourcePrefix(fixed), lsn: 1 };
  const collect = () => {
    const records: Array<{ topic: string; key: string | null; value: string | null }> = [];
    const emit: Emit = (topic, key, value) => records.push({ topic, key, value });
    return { records, emit };
  };
  const ops = (records: Array<{ key: string | null; value: string | null }>) =>
    records.map((r) => [r.key, r.value ? (JSON.parse(r.value) as ChangeEvent).op : null]);
  assert.equal(rowJson.key(['7', 'x']), '{"id":"7"}');
  assert.equal(new RowJson([{ name: 'id', typeOid: OID.int8 }], []).key(['7']), null);
  assert.equal(
    new RowJson(
      [
        { name: 'a', typeOid: OID.int4 },
        { name: 'b', typeOid: 25 },
      ],
      ['b', 'a'],
    ).key(['1', 'x']),
    JSON.stringify({ b: 'x', a: 1 }),
  );
  assert.equal(rowJson.key([undefined, 'x'], true), '{"id":null}');
  const del = collect();
  emitChange(del.emit, 'topic', rowJson.key(['7', null], true), 'd', rowJson.keyOnlyRow(['7', null]), 'null', at, 1);
  assert.equal(del.records.length, 2);
  assert.equal(del.records[1]?.value, null);
  assert.equal(del.records[1]?.key, '{"id":"7"}');
  assert.deepEqual((JSON.parse(del.records[0]?.value ?? '') as ChangeEvent).before, { id: '7', device: null });
  const keyless = collect();
  emitChange(keyless.emit, 'topic', null, 'd', 'null', 'null', at, 1);
  assert.deepEqual(ops(keyless.records), [[null, 'd']]);
  const same = collect();
  const after = ['7', 'web'];
  emitUpdate(same.emit, 'topic', null, rowJson.key(after), 'null', 'null', rowJson.row(after), at, 1);
  assert.deepEqual(ops(same.records), [['{"id":"7"}', 'u']]);
  const moved = collect();
  const moveTo = ['8', 'web'];
  emitUpdate(
    moved.emit,
    'topic',
    rowJson.key(['7', null], true),
    rowJson.key(moveTo),
    'null',
    rowJson.keyOnlyRow(['7', null]),
    rowJson.row(moveTo),
    at,
    1,
  );
  assert.deepEqual(ops(moved.records), [
    ['{"id":"7"}', 'd'],
    ['{"id":"7"}', null],
    ['{"id":"8"}', 'c'],
  ]);
});

/** A pgoutput message as the walsender sends it (protocol version 1, text values). */
const wire = {
  str: (s: string) => Buffer.concat([Buffer.from(s), Buffer.from([0])]),
  i32: (n: number) => Buffer.from([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]),
  i16: (n: number) => Buffer.from([(n >>> 8) & 255, n & 255]),
  tuple: (values: RawValue[]) =>
    Buffer.concat([
      wire.i16(values.length),
      ...values.map((v) =>
        v === null
          ? Buffer.from('n')
          : v === undefined
            ? Buffer.from('u')
            : Buffer.concat([Buffer.from('t'), wire.i32(Buffer.byteLength(v)), Buffer.from(v)]),
      ),
    ]),
};

test('row messages decode as the library decodes them, in column order', () => {
  const cols: Array<[string, number]> = [
    ['id', OID.int8],
    ['name', 25],
    ['payload', OID.jsonb],
  ];
  const relation = Buffer.concat([
    Buffer.from('R'),
    wire.i32(16400),
    wire.str('public'),
    wire.str('t'),
    Buffer.from('d'),
    wire.i16(cols.length),
    ...cols.map(([n, oid], i) =>
      Buffer.concat([Buffer.from([i === 0 ? 1 : 0]), wire.str(n), wire.i32(oid), wire.i32(-1)]),
    ),
  ]);
  const row = (tag: string, ...parts: Array<[string, RawValue[]]>) =>
    Buffer.concat([
      Buffer.from(tag),
      wire.i32(16400),
      ...parts.map(([sub, v]) => Buffer.concat([Buffer.from(sub), wire.tuple(v)])),
    ]);
  const messages = [
    row('I', ['N', ['1', 'é 😀 "q"', '{"a": 1}']]),
    row('I', ['N', ['2', null, '']]),
    row('U', ['N', ['1', 'x', undefined]]), // unchanged TOAST, no old row
    row('U', ['K', ['1', null, null]], ['N', ['3', 'x', undefined]]), // key changed (DEFAULT)
    row('U', ['O', ['1', 'old', '{"big": 1}']], ['N', ['1', 'new', undefined]]), // FULL: TOAST from the old row
    row('D', ['K', ['3', null, null]]),
    row('D', ['O', ['1', 'new', '{"big": 1}']]),
  ];
  const ours = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  const theirs = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  ours.parseMessage(relation);
  const rel = theirs.parse(relation);
  assert.equal(rel.tag, 'relation');
  if (rel.tag === 'relation') for (const c of rel.columns) c.parser = (raw: unknown) => raw;
  const names = cols.map(([n]) => n);
  const asTuple = (obj: Record<string, unknown> | null, keyOnly = false) =>
    obj === null ? null : names.map((n) => (keyOnly && obj[n] === undefined ? null : obj[n]));
  for (const buf of messages) {
    const mine = ours.parseMessage(buf);
    const ref = theirs.parse(buf);
    assert.equal(mine.tag, ref.tag);
    if (ref.tag === 'insert' && mine.tag === 'insert') assert.deepEqual(mine.new, asTuple(ref.new));
    else if (ref.tag === 'update' && mine.tag === 'update') {
      assert.deepEqual([mine.key, mine.old, mine.new], [asTuple(ref.key, true), asTuple(ref.old), asTuple(ref.new)]);
    } else if (ref.tag === 'delete' && mine.tag === 'delete')
      assert.deepEqual([mine.key, mine.old], [asTuple(ref.key, true), asTuple(ref.old)]);
    else assert.fail(`unexpected ${ref.tag}`);
    assert.equal(
      mine.tag !== 'insert' && mine.tag !== 'update' && mine.tag !== 'delete' ? null : mine.relation.name,
      't',
    );
  }
  assert.throws(
    () => ours.parseMessage(Buffer.concat([Buffer.from('I'), wire.i32(999), Buffer.from('N'), wire.tuple(['1'])])),
    /relation 999/,
  );
  assert.throws(() => ours.parseMessage(row('I', ['N', ['1', 'x', 'y']]).subarray(0, 20)), /truncated/);
});
