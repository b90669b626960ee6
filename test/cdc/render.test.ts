import assert from 'node:assert/strict';
import { test } from 'node:test';
import { changeRecords, envelopeJson, keyOf, sourcePrefix, updateRecords, type TableMeta } from '../../src/cdc/envelope.js';
import { formatLsn, lsnTextToNumber, parseLsn } from '../../src/cdc/lsn.js';
import { OID, renderKeyOnlyRow, renderRow, renderValue, timestamptzToIso, UNAVAILABLE_VALUE } from '../../src/cdc/render.js';
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
  assert.deepEqual(renderRow(cols, { id: '1', n: '2' }), { id: '1', n: 2, payload: UNAVAILABLE_VALUE });
  assert.deepEqual(Object.keys(renderRow(cols, { payload: null, n: null, id: '1' })), ['id', 'n', 'payload']);
  assert.deepEqual(renderKeyOnlyRow(cols, ['id'], { id: '5' }), { id: '5', n: null, payload: null });
});

test('LSNs: parse, format, order, number', () => {
  assert.equal(parseLsn('16/B374D848'), (0x16n << 32n) | 0xb374d848n);
  assert.equal(formatLsn(parseLsn('0/1DE3460')), '0/1DE3460');
  assert.ok(parseLsn('1/0') > parseLsn('0/FFFFFFFF'));
  assert.equal(lsnTextToNumber('16/B374D848'), Number(parseLsn('16/B374D848')));
  assert.throws(() => parseLsn('nope'));
});

const meta: TableMeta = {
  relationOid: 1,
  schema: 'public',
  table: 'engagement_events',
  columns: [
    { name: 'id', typeOid: OID.int8 },
    { name: 'device', typeOid: 25 },
  ],
  primaryKey: ['id'],
  replicaIdentity: 'default',
};
const fixed = { version: 'v', connector: 'postgresql' as const, name: 'engage', ts_ms: 5, snapshot: 'false' as const, db: 'd', schema: 'public', table: 't', txId: 9 };

test('envelopeJson is exactly JSON.stringify of the ChangeEvent', () => {
  const at = { prefix: sourcePrefix(fixed), lsn: 123, sequence: '["100","123"]' };
  const event: ChangeEvent = { before: null, after: { id: '7', device: 'ios "x"' }, source: { ...fixed, lsn: 123, sequence: '["100","123"]' }, op: 'c', ts_ms: 42 };
  assert.equal(envelopeJson('c', null, { id: '7', device: 'ios "x"' }, at, 42), JSON.stringify(event));
  const snap = { ...fixed, snapshot: 'last' as const, txId: null };
  assert.equal(
    envelopeJson('r', null, { id: '1' }, { prefix: sourcePrefix(snap), lsn: null }, 1),
    JSON.stringify({ before: null, after: { id: '1' }, source: { ...snap, lsn: null }, op: 'r', ts_ms: 1 }),
  );
});

test('keys, tombstones and primary-key changes', () => {
  const at = { prefix: sourcePrefix(fixed), lsn: 1 };
  assert.equal(keyOf(['id'], { id: '7', device: 'x' }), '{"id":"7"}');
  assert.equal(keyOf([], { id: '7' }), null);
  const del = changeRecords('topic', meta, 'd', { id: '7', device: null }, null, at, 1);
  assert.equal(del.length, 2);
  assert.equal(del[1]?.value, null);
  assert.equal(del[1]?.key, '{"id":"7"}');
  const same = updateRecords('topic', meta, null, null, { id: '7', device: 'web' }, at, 1);
  assert.deepEqual(same.map((r) => (r.value ? (JSON.parse(r.value) as ChangeEvent).op : null)), ['u']);
  const moved = updateRecords('topic', meta, null, { id: '7', device: null }, { id: '8', device: 'web' }, at, 1);
  assert.deepEqual(
    moved.map((r) => [r.key, r.value ? (JSON.parse(r.value) as ChangeEvent).op : null]),
    [
      ['{"id":"7"}', 'd'],
      ['{"id":"7"}', null],
      ['{"id":"8"}', 'c'],
    ],
  );
});
