import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import type pg from 'pg';
import { startCdc, type CdcComponent } from '../../src/cdc/cdc.js';
import { createLogger } from '../../src/core/logger.js';
import { SchemaRegistry } from '../../src/kafka/schema-registry/registry.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { dropAvroConfig, readAvro, readAvroToEnd, type AvroRecord } from './avro-helpers.js';
import { spawnCdc } from './child.js';
import { pgClient } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Schema evolution of the Avro CDC on the real stack and registry: columns added and dropped
 * mid-stream become new schema versions before their rows, every row once with the columns of its
 * time; a type change the subject's BACKWARD rule refuses stops `engage cdc` (exit 78) with a
 * message naming the column, the change and the rule, and nothing of that transaction is in
 * Kafka; once the rule is relaxed a restart writes everything, once.
 */

let env: TestEnv | undefined;
let db: pg.Client | undefined;
let cdc: CdcComponent | undefined;
const log = createLogger('error', 'cdc-avro-evolution-test');

afterEach(async () => {
  await cdc?.stop();
  cdc = undefined;
  await db?.end();
  db = undefined;
  if (env) {
    await dropAvroConfig(env.config);
    await env.cleanup();
  }
  env = undefined;
});

async function open(): Promise<{ env: TestEnv; db: pg.Client }> {
  env = await createTestEnv({ KAFKA_VALUE_FORMAT: 'avro', CDC_HEARTBEAT_SECONDS: '1', CDC_COMMIT_INTERVAL_MS: '20' });
  db = await pgClient(env.config);
  return { env, db };
}

/** Inserts `n` events in `n` transactions; returns their ids. */
async function insert(db: pg.Client, n: number, extra = ''): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await db.query<{ id: string }>(
      `INSERT INTO engagement_events (event_type, event_ts, duration_ms${extra ? ', referrer' : ''})
       VALUES ('play', now(), ${i + 1}${extra ? `, '${extra}'` : ''}) RETURNING id::text`,
    );
    ids.push(r.rows[0]?.id ?? '');
  }
  return ids;
}

/** The rows written to `topic`: created, or read by the snapshot (a row inserted before the slot was). */
const created = (recs: AvroRecord[], topic: string) =>
  recs.filter((r) => r.topic === topic && (r.value?.op === 'c' || r.value?.op === 'r'));
const afterOf = (r: AvroRecord) => r.value?.after as Record<string, unknown>;

test(
  'a column added then one dropped: a schema version each, every row once with its columns',
  { timeout: 120_000 },
  async () => {
    const { env, db } = await open();
    const topic = env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS;
    cdc = await startCdc(env.config, log);
    const v1 = await insert(db, 3);
    await db.query('ALTER TABLE engagement_events ADD COLUMN referrer text');
    const v2 = await insert(db, 3, 'newsletter');
    await db.query('ALTER TABLE engagement_events DROP COLUMN device');
    const v3 = await insert(db, 3, 'search');
    const recs = await readAvro(env.config, [topic], (rs) => created(rs, topic).length >= 9);
    await cdc.stop();
    cdc = undefined;

    const rows = created(recs, topic);
    assert.deepEqual(rows.map((r) => String(afterOf(r).id)).sort(), [...v1, ...v2, ...v3].sort(), 'every row once');
    const columnsOf = (ids: string[]) =>
      rows.filter((r) => ids.includes(String(afterOf(r).id))).map((r) => Object.keys(afterOf(r)).join(','));
    const base = 'id,content_id,user_id,event_type,event_ts,duration_ms';
    assert.deepEqual(new Set(columnsOf(v1)), new Set([`${base},device,raw_payload`]));
    assert.deepEqual(new Set(columnsOf(v2)), new Set([`${base},device,raw_payload,referrer`]));
    assert.deepEqual(new Set(columnsOf(v3)), new Set([`${base},raw_payload,referrer`]));
    assert.deepEqual(
      rows.filter((r) => v3.includes(String(afterOf(r).id))).map((r) => afterOf(r).referrer),
      ['search', 'search', 'search'],
    );

    const sr = await SchemaRegistry.connect({ url: env.config.schemaRegistryUrl, compatibility: 'BACKWARD' });
    assert.deepEqual(await sr.client.getAllVersions(`${topic}-value`), [1, 2, 3], 'three value schema versions');
    assert.deepEqual(await sr.client.getAllVersions(`${topic}-key`), [1], 'the key did not change');
    const ids = (list: string[]) =>
      new Set(rows.filter((r) => list.includes(String(afterOf(r).id))).map((r) => r.schemaId));
    const [s1, s2, s3] = [ids(v1), ids(v2), ids(v3)];
    assert.equal(s1.size, 1);
    assert.equal(s2.size, 1);
    assert.equal(s3.size, 1);
    assert.equal(new Set([...s1, ...s2, ...s3]).size, 3, 'each period has its own schema');
  },
);

test(
  'a type change BACKWARD refuses stops the CDC (exit 78) before its transaction; relaxed, a restart writes every row once',
  { timeout: 180_000 },
  async () => {
    const { env, db } = await open();
    const { KAFKA_TOPIC_ENGAGEMENT_EVENTS: events, KAFKA_TOPIC_CONTENT: content } = env.config;
    const child = spawnCdc(env.env);
    await waitFor(
      'the CDC streaming (its slot active)',
      async () =>
        (
          await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [
            env.config.CDC_SLOT_NAME,
          ])
        ).rowCount === 1,
      { timeoutMs: 60_000, describe: () => child.output().slice(-2000) },
    );
    const before = await insert(db, 2);
    await readAvro(env.config, [events], (rs) => created(rs, events).length >= 2).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${child.output().slice(-3000)}`);
    });

    await db.query('ALTER TABLE engagement_events ALTER COLUMN duration_ms TYPE text USING duration_ms::text');
    // One transaction: a content row (its schema unchanged) and an event of the new type.
    await db.query('BEGIN');
    await db.query(
      `INSERT INTO content (id, slug, title, publish_ts) VALUES ('2b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d', 'mixed', 'Mixed', now())`,
    );
    const mixed = await db.query<{ id: string }>(
      `INSERT INTO engagement_events (event_type, event_ts, duration_ms) VALUES ('play', now(), 'long') RETURNING id::text`,
    );
    await db.query('COMMIT');
    const exit = await child.exited;
    assert.equal(exit.code, 78, `exit 78 (EX_CONFIG: not restarted)\n${child.output().slice(-3000)}`);
    const out = child.output();
    assert.match(out, /SCHEMA_INCOMPATIBLE/);
    assert.match(out, /column engagement_events\.duration_ms changed int → string/);
    assert.match(out, /BACKWARD compatibility rule/);
    const afterFailure = await readAvroToEnd(env.config, [events, content]);
    assert.equal(created(afterFailure, events).length, 2, 'nothing of the refused transaction');
    assert.ok(!created(afterFailure, content).some((r) => afterOf(r).slug === 'mixed'), 'not even its content row');

    // The operator relaxes the subject's rule (the WAL still holds the text column), restarts, then reverts the type.
    const sr = await SchemaRegistry.connect({ url: env.config.schemaRegistryUrl, compatibility: 'BACKWARD' });
    await sr.client.updateCompatibility(`${events}-value`, 'NONE' as never);
    cdc = await startCdc(env.config, log);
    await db.query('ALTER TABLE engagement_events ALTER COLUMN duration_ms TYPE int USING 7');
    const later = await insert(db, 1);
    const recs = await readAvro(
      env.config,
      [events, content],
      (rs) => created(rs, events).length >= 4 && created(rs, content).some((r) => afterOf(r).slug === 'mixed'),
    );
    const ids = created(recs, events).map((r) => String(afterOf(r).id));
    assert.deepEqual(ids.sort(), [...before, mixed.rows[0]?.id ?? '', ...later].sort(), 'every event once');
    assert.equal(created(recs, content).filter((r) => afterOf(r).slug === 'mixed').length, 1, 'the content row once');
    const byId = new Map(created(recs, events).map((r) => [String(afterOf(r).id), afterOf(r)]));
    assert.equal(byId.get(mixed.rows[0]?.id ?? '')?.duration_ms, 'long');
    assert.equal(byId.get(later[0] ?? '')?.duration_ms, 1);
    assert.deepEqual(await sr.client.getAllVersions(`${events}-value`), [1, 2], 'the text type, then int again (v1)');
  },
);
