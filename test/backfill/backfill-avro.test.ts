import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { runBackfill } from '../../src/backfill/run.js';
import { createLogger } from '../../src/core/logger.js';
import { generateHistorical } from '../../src/generator/modes.js';
import { connectConfiguredRegistry } from '../../src/kafka/schema-registry/from-config.js';
import { avroOverrides } from '../helpers/avro-fixtures.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { readTopic } from '../processor/kafka-helpers.js';

/**
 * The backfill into the enriched topic with KAFKA_VALUE_FORMAT=avro on the real stack and registry:
 * the events go in Avro, under the processor's registered EnrichedEvent schema, keyed by the content
 * id as text, and read back by the library's stock AvroDeserializer as the events the transform made.
 */

let env: TestEnv;
let db: pg.Client;
const log = createLogger('silent');

before(async () => {
  env = await createTestEnv(avroOverrides());
  db = new pg.Client({ connectionString: env.config.databaseUrl });
  await db.connect();
  await generateHistorical(env.config, {
    days: 2,
    eventsPerDay: 500,
    seed: 9,
    nowMs: Date.parse('2025-08-05T12:00:00Z'),
  });
});

after(async () => {
  await db?.end();
  await env?.cleanup();
});

test('a backfill writes Avro enriched events that the stock deserializer reads', { timeout: 60000 }, async () => {
  const res = await runBackfill(
    env.config,
    { startDate: '2025-08-04', endDate: '2025-08-04', pageSize: 200, progress: false },
    log,
  );
  assert.ok(res.delivered > 100, `delivered ${res.delivered}`);
  const sr = await connectConfiguredRegistry(env.config);
  const { avro, serde } = sr.serdes;
  const stock = new avro.AvroDeserializer(sr.client, serde.SerdeType.VALUE, {});
  const topic = env.config.KAFKA_TOPIC_ENRICHED;
  const records = await readTopic(env.config.kafkaBrokers, topic, 60000);
  assert.equal(records.length, res.delivered, 'each event once');
  const decoded: Array<Record<string, unknown>> = [];
  for (const m of records) {
    assert.equal(m.value?.[0], 0, 'Confluent wire format');
    const v = JSON.parse(JSON.stringify(await stock.deserialize(topic, m.value as Buffer))) as Record<string, unknown>;
    assert.equal(String(m.key), v.content_id, 'keyed by the content id as text');
    decoded.push(v);
  }
  // The transform's fields, as JSON mode has them (raw_payload and extra travel as JSON text).
  const rows = await db.query<{ id: string; ts: string; duration: number | null; slug: string; length: number | null }>(
    `SELECT e.id::text AS id, to_char(e.event_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts,
            e.duration_ms AS duration, c.slug, c.length_seconds AS length
       FROM engagement_events e JOIN content c ON c.id = e.content_id`,
  );
  const byId = new Map(rows.rows.map((r) => [r.id, r]));
  for (const v of decoded) {
    const r = byId.get(String(v.event_id));
    const seconds = r?.duration == null ? null : r.duration / 1000;
    assert.equal(v.event_ts, r?.ts);
    assert.equal(v.content_slug, r?.slug);
    assert.equal(v.engagement_seconds, seconds);
    assert.equal(v.engagement_pct, seconds === null || !r?.length ? null : (seconds / r.length) * 100);
    assert.equal(v.origin, 'backfill');
    assert.equal(typeof JSON.parse(String(v.raw_payload)), 'object');
    assert.deepEqual(JSON.parse(String(v.extra)), {});
  }
});
