import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { startCdc, type CdcComponent } from '../../src/cdc/cdc.js';
import type { Config } from '../../src/config/load.js';
import { createLogger } from '../../src/core/logger.js';
import type { ChangeEvent } from '../../src/core/types.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { avroConfig, dropAvroConfig, readAvro, type AvroRecord } from './avro-helpers.js';
import { pgClient, readTopics, type Record as JsonRecord } from './helpers.js';

/**
 * KAFKA_VALUE_FORMAT=avro on the real stack, beside a JSON CDC on the same database (a slot and
 * topics each): the snapshot, inserts, updates and deletes of both tables read back with the stock
 * AvroDeserializer equal the JSON events (int8 as a long; each CDC's own build time aside),
 * tombstones follow deletes, and the registry's stored schemas are readable by a plain HTTP client.
 */

let env: TestEnv;
let avro: Config;
let incremental: Config;
let db: pg.Client;
const cdcs: CdcComponent[] = [];
const log = createLogger('warn', 'cdc-avro-test');
const CONTENT_ID = '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d';

before(async () => {
  env = await createTestEnv({ CDC_HEARTBEAT_SECONDS: '1', CDC_COMMIT_INTERVAL_MS: '20' });
  avro = avroConfig(env, 'avro');
  incremental = avroConfig(env, 'inc', { CDC_SNAPSHOT_MODE: 'incremental' });
  db = await pgClient(env.config);
  await db.query(
    `INSERT INTO content (id, slug, title, content_type, length_seconds, publish_ts) VALUES ($1, 'avro', 'Avro', 'video', 600, '2025-08-01T00:00:00Z')`,
    [CONTENT_ID],
  );
  await db.query(
    `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload) VALUES
       ($1, '11111111-2222-4333-8444-555555555555', 'play', '2025-08-01 10:00:00.123456+00', 1500, 'ios', '{"a": 1}'),
       (NULL, NULL, NULL, '2025-08-01 12:00:00+02', NULL, NULL, NULL)`,
    [CONTENT_ID],
  );
});

after(async () => {
  for (const c of cdcs) await c.stop();
  await db?.end();
  if (avro) await dropAvroConfig(avro);
  if (incremental) await dropAvroConfig(incremental);
  await env?.cleanup();
});

/** What the Avro record of a JSON event holds: int8 (`id`) as a number, no sequence as null. */
function asAvro(e: ChangeEvent): Record<string, unknown> {
  const row = (r: Record<string, unknown> | null) =>
    r && { ...r, id: typeof r.id === 'string' && /^\d+$/.test(r.id) ? Number(r.id) : r.id };
  return { ...e, before: row(e.before), after: row(e.after), source: { sequence: null, ...e.source }, truncated: null };
}

/** The parts both CDCs agree on: not their own build time, nor a snapshot's consistent point and start time. */
function comparable(v: Record<string, unknown> | null): unknown {
  if (v === null) return null;
  const { ts_ms: _built, source, ...rest } = v;
  const s = source as Record<string, unknown>;
  const { lsn, ts_ms, ...src } = s;
  return { ...rest, source: s.snapshot === 'false' ? { ...src, lsn, ts_ms } : src };
}

const keyText = (k: Record<string, unknown> | null) => JSON.stringify(k && { ...k, id: String(k.id) });

test(
  'Avro events equal the JSON events, tombstones included; the registry serves the schemas',
  { timeout: 120_000 },
  async () => {
    const contentRows = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM content')).rows[0]?.n);
    cdcs.push(await startCdc(env.config, log), await startCdc(avro, log), await startCdc(incremental, log));
    const ins = await db.query<{ id: string }>(
      `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload)
     VALUES ($1, NULL, 'finish', '2025-08-02 08:30:00.5+00', 42, 'web', '{"x": "y"}'), ($1, NULL, 'click', now(), 0, 'tv', '[]')
     RETURNING id::text`,
      [CONTENT_ID],
    );
    const [a, b] = ins.rows.map((r) => r.id) as [string, string];
    await db.query('UPDATE engagement_events SET duration_ms = 43, device = NULL WHERE id = $1', [a]);
    await db.query('DELETE FROM engagement_events WHERE id = $1', [b]);
    await db.query('UPDATE content SET length_seconds = 700 WHERE id = $1', [CONTENT_ID]);
    await db.query(
      `INSERT INTO content (id, slug, title, publish_ts) VALUES ('1b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d', 'gone', 'Gone', now())`,
    );
    await db.query(`DELETE FROM content WHERE slug = 'gone'`);
    // events: 2 snapshot reads + c, c, u, d, tombstone; content: its rows read + u, c, d, tombstone.
    const expected = 7 + contentRows + 4;
    const topics = (c: Config) => [c.KAFKA_TOPIC_ENGAGEMENT_EVENTS, c.KAFKA_TOPIC_CONTENT];
    const json = await readTopics(env.config, topics(env.config), (r) => r.length >= expected);
    const avroRecs = await readAvro(avro, topics(avro), (r) => r.length >= expected);
    assert.equal(json.length, expected);
    assert.equal(avroRecs.length, expected);

    const byKey = <R>(recs: R[], key: (r: R) => string) => {
      const m = new Map<string, R[]>();
      for (const r of recs) m.set(key(r), [...(m.get(key(r)) ?? []), r]);
      return m;
    };
    const jsonByKey = byKey(
      json,
      (r: JsonRecord) => `${r.topic.endsWith('.content') ? 'content' : 'events'}|${r.key ?? ''}`,
    );
    const avroByKey = byKey(
      avroRecs,
      (r: AvroRecord) => `${r.topic.endsWith('.content') ? 'content' : 'events'}|${keyText(r.key)}`,
    );
    assert.deepEqual([...avroByKey.keys()].sort(), [...jsonByKey.keys()].sort(), 'the same keys');
    for (const [key, jsonRecs] of jsonByKey) {
      const got = (avroByKey.get(key) ?? []).map((r) => comparable(r.value));
      const want = jsonRecs.map((r) => comparable(r.value && asAvro(r.value)));
      assert.deepEqual(got, want, key);
    }
    const ops = avroRecs.map((r) => (r.value ? String(r.value.op) : 'tombstone'));
    for (const op of ['r', 'c', 'u', 'd', 'tombstone']) assert.ok(ops.includes(op), op);
    const deleted = avroByKey.get(`events|${keyText({ id: b })}`) ?? [];
    assert.deepEqual(
      deleted.map((r) => (r.value ? r.value.op : null)),
      ['c', 'd', null],
      'a delete is followed by a tombstone with the Avro key',
    );
    assert.deepEqual(deleted[2]?.key, { id: Number(b) });
    assert.ok(
      avroRecs.reduce((n, r) => n + r.bytes, 0) < json.reduce((n, r) => n + r.bytes, 0),
      'Avro records are smaller',
    );

    // The incremental snapshot's chunks (op r, written inside the stream) end in the same rows.
    const finalAfter = <R>(recs: Map<string, R[]>, value: (r: R) => unknown) =>
      JSON.stringify([...recs].map(([k, rs]) => [k, value(rs[rs.length - 1] as R)]).sort());
    const want = finalAfter(jsonByKey, (r: JsonRecord) => (r.value ? asAvro(r.value).after : null));
    const inc = await readAvro(
      incremental,
      topics(incremental),
      (rs) =>
        finalAfter(
          byKey(rs, (r: AvroRecord) => `${r.topic.endsWith('.content') ? 'content' : 'events'}|${keyText(r.key)}`),
          (r: AvroRecord) => (r.value ? r.value.after : null),
        ) === want,
    );
    assert.ok(
      inc.some((r) => r.value?.op === 'r' && (r.value.source as { snapshot: string }).snapshot === 'incremental'),
    );

    // A stock client reads the stored schema over HTTP.
    const res = await fetch(
      `${avro.schemaRegistryUrl}/subjects/${avro.KAFKA_TOPIC_ENGAGEMENT_EVENTS}-value/versions/latest`,
    );
    assert.equal(res.status, 200);
    const latest = (await res.json()) as { id: number; version: number; schema: string };
    const schema = JSON.parse(latest.schema) as { name: string; namespace: string; fields: Array<{ type: unknown }> };
    const valueFields = ((schema.fields[0]?.type as unknown[])[1] as { fields: Array<{ name: string; type: unknown }> })
      .fields;
    assert.deepEqual(
      valueFields.find((f) => f.name === 'user_id')?.type,
      ['null', 'string'],
      'a pseudonymised uuid (PII_FIELDS) is a plain string',
    );
    assert.equal(`${schema.namespace}.${schema.name}`, `${avro.CDC_SERVER_NAME}.public.engagement_events.Envelope`);
    assert.equal(latest.version, 1);
    assert.ok(
      avroRecs
        .filter((r) => r.topic === avro.KAFKA_TOPIC_ENGAGEMENT_EVENTS && r.value)
        .every((r) => r.schemaId === latest.id),
    );
    const key = await fetch(`${avro.schemaRegistryUrl}/subjects/${avro.KAFKA_TOPIC_CONTENT}-key/versions/latest`);
    const keySchema = JSON.parse(((await key.json()) as { schema: string }).schema) as {
      name: string;
      fields: unknown[];
    };
    assert.equal(keySchema.name, 'Key');
    assert.deepEqual(keySchema.fields, [
      { name: 'id', type: { type: 'string', 'connect.version': 1, 'connect.name': 'io.debezium.data.Uuid' } },
    ]);
  },
);
