import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AvroEncoder } from '../../src/cdc/avro/avro-encoder.js';
import { describeKeyChange, describeValueChange } from '../../src/cdc/avro/schema-change.js';
import { avroName, tableSchemas, type TableLayout } from '../../src/cdc/avro/schema.js';
import { CDC_VERSION, emitChange, emitUpdate, sourcePrefix, type ChangeAt } from '../../src/cdc/envelope.js';
import { OID, UNAVAILABLE_VALUE } from '../../src/cdc/render.js';
import { RowJson } from '../../src/cdc/row-json.js';
import { createLogger } from '../../src/core/logger.js';
import { SchemaRegistry } from '../../src/kafka/schema-registry/registry.js';
import { EVENTS } from './avro-helpers.js';

/**
 * The CDC's Avro schemas and encoding, pure or against the library's in-process mock registry:
 * Debezium's names and type mapping, and every JSON event read back from the Avro bytes equal to
 * the JSON (int8 as a long).
 */

/** Every other mapped type, in one table. */
const TYPES: TableLayout = {
  schema: 'public',
  table: 'types',
  columns: [
    { name: 'k', typeOid: OID.int4 },
    { name: 'small', typeOid: OID.int2 },
    { name: 'f4', typeOid: OID.float4 },
    { name: 'f8', typeOid: OID.float8 },
    { name: 'flag', typeOid: OID.bool },
    { name: 'amount', typeOid: OID.numeric },
    { name: 'day', typeOid: OID.date },
    { name: 'at', typeOid: OID.timestamp },
    { name: 'blob', typeOid: OID.bytea },
    { name: 'body', typeOid: 25 },
    { name: 'tags', typeOid: 1009 },
  ],
  primaryKey: ['k'],
};

/** avsc decodes records into instances of a class per record type: compare their fields. */
const plain = (v: unknown): unknown =>
  JSON.parse(
    JSON.stringify(v, (_k, x: unknown) => {
      const b = x as { type?: unknown; data?: number[] } | null;
      if (b?.type === 'Buffer' && Array.isArray(b.data)) return Buffer.from(b.data).toString('base64');
      return typeof x === 'number' && !Number.isFinite(x) ? String(x) : x;
    }),
  ) as unknown;

test('schemas carry Debezium names, the type mapping, optional values and a required key', () => {
  const s = tableSchemas('engage', EVENTS);
  assert.equal(s.value.name, 'Envelope');
  assert.equal(s.value.namespace, 'engage.public.engagement_events');
  assert.equal(s.value['connect.name'], 'engage.public.engagement_events.Envelope');
  assert.deepEqual(
    s.value.fields.map((f) => f.name),
    ['before', 'after', 'source', 'op', 'ts_ms', 'truncated'],
  );
  const source = s.value.fields[2]?.type as unknown as {
    name: string;
    namespace: string;
    fields: Array<{ name: string }>;
  };
  assert.equal(`${source.namespace}.${source.name}`, 'io.debezium.connector.postgresql.Source');
  assert.deepEqual(
    source.fields.map((f) => f.name),
    ['version', 'connector', 'name', 'ts_ms', 'snapshot', 'db', 'sequence', 'schema', 'table', 'txId', 'lsn'],
  );
  const value = (s.value.fields[0]?.type as unknown[])[1] as {
    name: string;
    fields: Array<{ name: string; type: unknown; default: unknown }>;
  };
  assert.equal(value.name, 'Value');
  const types = Object.fromEntries(value.fields.map((f) => [f.name, f.type]));
  assert.deepEqual(types.id, ['null', 'long']);
  assert.deepEqual(types.duration_ms, ['null', 'int']);
  assert.deepEqual(types.device, ['null', 'string']);
  assert.deepEqual(types.user_id, [
    'null',
    { type: 'string', 'connect.version': 1, 'connect.name': 'io.debezium.data.Uuid' },
  ]);
  assert.deepEqual(types.event_ts, [
    'null',
    { type: 'string', 'connect.version': 1, 'connect.name': 'io.debezium.time.ZonedTimestamp' },
  ]);
  assert.deepEqual(types.raw_payload, [
    'null',
    { type: 'string', 'connect.version': 1, 'connect.name': 'io.debezium.data.Json' },
  ]);
  assert.ok(value.fields.every((f) => f.default === null));
  assert.deepEqual(s.key, {
    type: 'record',
    name: 'Key',
    namespace: 'engage.public.engagement_events',
    fields: [{ name: 'id', type: 'long' }],
    'connect.name': 'engage.public.engagement_events.Key',
  });
  const pii = tableSchemas('engage', { ...EVENTS, stringColumns: new Set(['user_id']) });
  const piiValue = (pii.value.fields[0]?.type as unknown[])[1] as { fields: Array<{ name: string; type: unknown }> };
  assert.deepEqual(
    piiValue.fields.find((f) => f.name === 'user_id')?.type,
    ['null', 'string'],
    'a pseudonym is a plain string',
  );

  const all = tableSchemas('engage', TYPES);
  const allValue = (all.value.fields[0]?.type as unknown[])[1] as { fields: Array<{ name: string; type: unknown[] }> };
  assert.deepEqual(Object.fromEntries(allValue.fields.map((f) => [f.name, f.type[1]])), {
    k: 'int',
    small: { type: 'int', 'connect.type': 'int16' },
    f4: 'float',
    f8: 'double',
    flag: 'boolean',
    amount: 'string',
    day: 'string',
    at: 'string',
    blob: 'bytes',
    body: 'string',
    tags: 'string',
  });
  assert.equal(avroName('9lives'), '_9lives');
  assert.equal(avroName('first-name'), 'first_name');
  assert.equal(tableSchemas('my-server', EVENTS).value.namespace, 'my_server.public.engagement_events');
});

test('schema changes are described by column, type and key', () => {
  const v1 = tableSchemas('engage', EVENTS);
  const changed = tableSchemas('engage', {
    ...EVENTS,
    columns: [
      ...EVENTS.columns
        .filter((c) => c.name !== 'device')
        .map((c) => (c.name === 'duration_ms' ? { ...c, typeOid: 25 } : c)),
      { name: 'referrer', typeOid: 25 },
    ],
  });
  assert.equal(
    describeValueChange('engagement_events', v1.value, changed),
    'column engagement_events.duration_ms changed int → string, column engagement_events.referrer added (string), column engagement_events.device dropped',
  );
  assert.match(describeValueChange('engagement_events', null, v1), /first schema \(8 columns\)/);
  const rekeyed = tableSchemas('engage', { ...EVENTS, primaryKey: ['id', 'event_ts'] });
  assert.equal(
    describeKeyChange('engagement_events', v1.key, rekeyed.key ?? v1.value),
    'primary key of engagement_events changed (id) → (id, event_ts)',
  );
});

/** The records of a few changes of `layout`, as the CDC renders them in JSON. */
function render(
  layout: TableLayout,
  rows: Array<Array<string | null | undefined>>,
): Array<[string | null, string | null]> {
  const json = new RowJson(layout.columns, layout.primaryKey);
  const out: Array<[string | null, string | null]> = [];
  const emit = (_t: string, k: string | null, v: string | null) => void out.push([k, v]);
  const at = (snapshot: 'false' | 'true'): ChangeAt => ({
    prefix: sourcePrefix({
      version: CDC_VERSION,
      connector: 'postgresql',
      name: 'engage',
      ts_ms: 1754042400123,
      snapshot,
      db: 'engagement_db',
      schema: layout.schema,
      table: layout.table,
      txId: snapshot === 'true' ? null : 7811,
    }),
    lsn: 24153560,
    ...(snapshot === 'true' ? {} : { sequence: '["24153488","24153560"]' }),
  });
  const [first, second] = rows as [Array<string | null>, Array<string | null | undefined>];
  emitChange(emit, 't', json.key(first), 'r', 'null', json.row(first), at('true'), 1);
  emitChange(emit, 't', json.key(first), 'c', 'null', json.row(first), at('false'), 2);
  emitUpdate(emit, 't', null, json.key(second), 'null', 'null', json.row(second), at('false'), 3);
  emitChange(emit, 't', json.key(first), 'd', json.keyOnlyRow([first[0]]), 'null', at('false'), 4);
  return out;
}

test('every event encodes to Avro that decodes to the JSON event (int8 as long, bytes as bytes)', async () => {
  const registry = await SchemaRegistry.connect({ url: 'mock://cdc-avro-test', compatibility: 'BACKWARD' });
  const cases: Array<[TableLayout, Array<Array<string | null | undefined>>]> = [
    [
      EVENTS,
      [
        [
          '9007199254740990',
          '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d',
          null,
          'play',
          '2025-08-01 10:00:00.123456+00',
          '1500',
          'ios',
          '{"a": 1}',
        ],
        ['42', null, null, null, '2025-08-01 12:00:00+02', null, 'web', undefined],
      ],
    ],
    [
      TYPES,
      [
        [
          '1',
          '-7',
          'NaN',
          '-Infinity',
          't',
          '12345678901234567890.000000001',
          '2025-08-01',
          '2025-08-01 10:00:00.5',
          '\\x0102ff',
          'é "quoted"',
          '{a,b}',
        ],
        ['2', null, '1.5', '2.25', 'f', null, null, null, undefined, undefined, null],
      ],
    ],
  ];
  for (const [layout, rows] of cases) {
    const topic = `avro-test-${layout.table}`;
    const encoder = new AvroEncoder(registry, 'engage', createLogger('error', 'avro-test'));
    await encoder.streamLayout(topic, layout);
    await encoder.snapshotLayout(topic, layout);
    const keys = registry.reader(topic, 'key');
    const values = registry.reader(topic, 'value');
    for (const [key, value] of render(layout, rows)) {
      const bytes = encoder.encode(topic, key, value);
      await keys.prepare([bytes.key]);
      await values.prepare([bytes.value]);
      const decodedKey = plain(keys.decode(bytes.key as Buffer)) as Record<string, unknown>;
      assert.deepEqual(decodedKey, numeric(layout, JSON.parse(key ?? 'null') as Record<string, unknown>));
      if (value === null) {
        assert.equal(bytes.value, null, 'a tombstone stays a null value');
        continue;
      }
      const event = JSON.parse(value) as Record<string, Record<string, unknown> | null>;
      const want = {
        ...event,
        before: event.before && numeric(layout, event.before),
        after: event.after && numeric(layout, event.after),
        source: { sequence: null, ...event.source },
        truncated: null,
      };
      const got = plain(values.decode(bytes.value as Buffer)) as Record<string, unknown>;
      assert.deepEqual(got, plain(want), `${layout.table} ${String(event.op)}`);
    }
  }
});

/** The JSON row as the Avro record holds it: int8 a number, bytea bytes, a bytea placeholder its bytes
 *  (base64 again through `plain`, which also writes NaN and ±Infinity as the JSON does). */
function numeric(layout: TableLayout, row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(row)) {
    const oid = layout.columns.find((c) => c.name === name)?.typeOid;
    if (v === null) out[name] = null;
    else if (oid === OID.int8) out[name] = Number(v);
    else if (oid === OID.bytea && v === UNAVAILABLE_VALUE) out[name] = Buffer.from(v).toString('base64');
    else out[name] = v;
  }
  return out;
}
