import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { startCdc, type CdcComponent } from '../../src/cdc/cdc.js';
import { createLogger } from '../../src/core/logger.js';
import { registry } from '../../src/core/metrics.js';
import type { EnrichedEvent } from '../../src/core/types.js';
import { startProcessor, type Processor } from '../../src/processor/processor.js';
import { startReceiver, type RunningReceiver } from '../../src/receiver/index.js';
import { startSinkRunner, type SinkRunner } from '../../src/runtime/sink-runner.js';
import type { SinkBatch } from '../../src/sinks/contract.js';
import { ExternalSink } from '../../src/sinks/external/external-sink.js';
import { getSinkFactory } from '../../src/sinks/registry.js';
import { DuckDbWarehouse } from '../../src/sinks/warehouse/duckdb.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitUntil } from '../helpers/sink-harness.js';
import { parseValues, readTopic } from '../processor/kafka-helpers.js';
import { openReader } from '../sinks/warehouse-fixtures.js';

/**
 * Reused ids on the real stack (PostgreSQL → CDC → processor → warehouse (DuckDB) and the external
 * receiver): events are inserted, `TRUNCATE engagement_events RESTART IDENTITY` runs, and new events
 * get the same ids. Every new event reaches both sinks; the CDC counts the TRUNCATE (metric and
 * status); writing the same enriched records again through each sink stores nothing twice.
 */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'test-reused-ids');
const N = 40;
let env: TestEnv;
let db: pg.Client;
let receiver: RunningReceiver;
let cdc: CdcComponent | undefined;
let proc: Processor | undefined;
const runners: SinkRunner[] = [];

before(async () => {
  receiver = await startReceiver();
  env = await createTestEnv({ PROCESSING_INTERVAL_SECONDS: '0.2', WAREHOUSE_FLUSH_SECONDS: '0.2', BATCH_SIZE: '50' });
  db = new pg.Client({ connectionString: env.config.databaseUrl });
  await db.connect();
  await db.query(`INSERT INTO content (id, slug, title, content_type, length_seconds, publish_ts) VALUES ('00000000-0000-4000-8000-0000000000a1', 'reuse', 'Reuse', 'video', 600, '2025-01-01T00:00:00Z')`);
});

after(async () => {
  for (const r of runners) await r.stop();
  await proc?.stop();
  await cdc?.stop();
  await db?.end();
  await env?.cleanup();
  await receiver?.close();
});

async function insertEvents(durationMs: (i: number) => number): Promise<void> {
  const values = Array.from({ length: N }, (_, i) => `('00000000-0000-4000-8000-0000000000a1', gen_random_uuid(), 'play', now() - interval '${N - i} seconds', ${durationMs(i)}, 'web', '{}')`);
  await db.query(`INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload) VALUES ${values.join(', ')}`);
}

async function warehouseRows(): Promise<Array<{ id: string; ts: string; flags: string }>> {
  const r = await openReader(env.config.DUCKDB_PATH);
  try {
    const rows = await r.rows(`SELECT CAST(event_id AS VARCHAR) AS id, CAST(epoch_us(event_ts) AS VARCHAR) AS ts, array_to_string(quality_flags, ',') AS flags FROM engagement_events_enriched`);
    return rows.map((x) => ({ id: String(x.id), ts: String(x.ts), flags: String(x.flags) }));
  } finally {
    r.close();
  }
}

function truncates(): Promise<number> {
  return (async () => {
    const m = await registry.getSingleMetric('engage_cdc_table_truncates_total')?.get();
    return m?.values.filter((v) => v.labels.slot === env.config.CDC_SLOT_NAME && v.labels.table === 'public.engagement_events').reduce((s, v) => s + v.value, 0) ?? 0;
  })();
}

test('after TRUNCATE … RESTART IDENTITY every new event reaches the warehouse and the external system; re-sent records are stored once', { timeout: 180_000 }, async () => {
  const config = { ...env.config, EXTERNAL_API_URL: receiver.url };
  await insertEvents((i) => 1000 + i);
  cdc = await startCdc(config, log);
  proc = await startProcessor(config, log);
  runners.push(await startSinkRunner(config, getSinkFactory('warehouse'), log), await startSinkRunner(config, getSinkFactory('external'), log));
  const first = await db.query<{ id: string }>('SELECT id::text AS id FROM engagement_events');
  await waitUntil('the first events in both sinks', async () => (await warehouseRows()).length === N && receiver.stats().events_unique === N, 60_000);

  await db.query('TRUNCATE engagement_events RESTART IDENTITY');
  // One new event with an implausible duration: stored with its flag, not dropped.
  await insertEvents((i) => (i === 0 ? 2147483647 : 2000 + i));
  const second = await db.query<{ id: string }>('SELECT id::text AS id FROM engagement_events');
  assert.deepEqual(second.rows.map((r) => r.id).sort(), first.rows.map((r) => r.id).sort(), 'the new events reuse the old ids');

  await waitUntil('the new events in both sinks', async () => (await warehouseRows()).length === 2 * N && receiver.stats().events_unique === 2 * N, 60_000, async () => ({ warehouse: (await warehouseRows()).length, receiver: receiver.stats() }));
  const rows = await warehouseRows();
  assert.equal(new Set(rows.map((r) => r.id)).size, N, 'each id twice: an old and a new event');
  assert.equal(new Set(rows.map((r) => `${r.id}@${r.ts}`)).size, 2 * N);
  assert.equal(rows.filter((r) => r.flags.includes('implausible_duration')).length, 1);
  assert.equal(new Set(receiver.eventKeys()).size, 2 * N);
  await waitUntil('the TRUNCATE counted', async () => (await truncates()) === 1 && (cdc?.status().table_truncates ?? 0) === 1, 20_000);
  assert.deepEqual(cdc.status().last_truncate?.tables, ['public.engagement_events']);

  // Re-delivery: the enriched records written again through each sink, twice, as a replay would.
  for (const r of runners.splice(0)) await r.stop();
  const events = parseValues<EnrichedEvent>(await readTopic(config.kafkaBrokers, config.KAFKA_TOPIC_ENRICHED));
  assert.equal(events.length, 2 * N);
  const batch: SinkBatch = {
    topic: 'replay:test',
    partition: 0,
    records: events.map((event, i) => ({ topic: 'replay:test', partition: 0, offset: String(i), key: event.content_id, event })),
    nextOffset: String(events.length),
  };
  const warehouse = new DuckDbWarehouse({ config, log });
  const external = new ExternalSink({ config, log });
  await warehouse.start();
  await external.start();
  try {
    for (let i = 0; i < 2; i++) {
      await warehouse.write(batch);
      await external.write(batch);
    }
  } finally {
    await warehouse.close();
    await external.close();
  }
  assert.equal((await warehouseRows()).length, 2 * N, 'the warehouse stored nothing again');
  assert.equal(receiver.stats().events_unique, 2 * N, 'the external system counted nothing again');
});
