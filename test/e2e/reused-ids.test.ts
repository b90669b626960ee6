import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { HealthReport } from '../../src/api/health/evaluate.js';
import { startCdc, type CdcComponent } from '../../src/cdc/cdc.js';
import { createLogger } from '../../src/core/logger.js';
import { registry } from '../../src/core/metrics.js';
import type { EnrichedEvent } from '../../src/core/types.js';
import { startProcessor, type Processor } from '../../src/processor/processor.js';
import { startReceiver, type RunningReceiver } from '../../src/receiver/index.js';
import { startHeartbeat } from '../../src/runtime/heartbeat.js';
import { startSinkRunner, type SinkRunner } from '../../src/runtime/sink-runner.js';
import type { SinkBatch } from '../../src/core/sink-contract.js';
import { ExternalSink } from '../../src/sinks/external/external-sink.js';
import { getSinkFactory } from '../../src/sinks/registry.js';
import { DuckDbWarehouse } from '../../src/sinks/warehouse/duckdb/duckdb-warehouse.js';
import { startTestApi } from '../api/fixtures.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';
import { parseValues, readTopic } from '../processor/kafka-helpers.js';
import { adminClient, reader, wipe } from '../sinks/redis/redis-fixtures.js';
import { openReader } from '../sinks/warehouse/warehouse-fixtures.js';

/**
 * Reused ids on the real stack (PostgreSQL → CDC → processor → warehouse (DuckDB), the external
 * receiver and Redis): events are inserted, `TRUNCATE engagement_events RESTART IDENTITY` runs,
 * and new events get the same ids. Every new event reaches the sinks; the CDC counts the TRUNCATE
 * (metric, status, /health); writing the same enriched records again through the warehouse and the
 * external sink stores nothing twice. One new event has duration_ms 2147483647: the warehouse
 * stores it flagged, Redis's top content and stats leave it out.
 */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'test-reused-ids');
const N = 40;
const CONTENT = '00000000-0000-4000-8000-0000000000a1';
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
  await db.query(
    `INSERT INTO content (id, slug, title, content_type, length_seconds, publish_ts) VALUES ('${CONTENT}', 'reuse', 'Reuse', 'video', 600, '2025-01-01T00:00:00Z')`,
  );
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
  const values = Array.from(
    { length: N },
    (_, i) =>
      `('${CONTENT}', gen_random_uuid(), 'play', now() - interval '${N - i} seconds', ${durationMs(i)}, 'web', '{}')`,
  );
  await db.query(
    `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload) VALUES ${values.join(', ')}`,
  );
}

async function warehouseRows(): Promise<Array<{ id: string; ts: string; flags: string }>> {
  const r = await openReader(env.config.DUCKDB_PATH);
  try {
    const rows = await r.rows(
      `SELECT CAST(event_id AS VARCHAR) AS id, CAST(epoch_us(event_ts) AS VARCHAR) AS ts, array_to_string(quality_flags, ',') AS flags FROM engagement_events_enriched`,
    );
    return rows.map((x) => ({ id: String(x.id), ts: String(x.ts), flags: String(x.flags) }));
  } finally {
    r.close();
  }
}

function truncates(): Promise<number> {
  return (async () => {
    const m = await registry.getSingleMetric('engage_cdc_table_truncates_total')?.get();
    return (
      m?.values
        .filter((v) => v.labels.slot === env.config.CDC_SLOT_NAME && v.labels.table === 'public.engagement_events')
        .reduce((s, v) => s + v.value, 0) ?? 0
    );
  })();
}

test(
  'after TRUNCATE … RESTART IDENTITY every new event reaches the warehouse, the external system and Redis; re-sent records are stored once; an implausible duration stays out of Redis',
  { timeout: 180_000 },
  async () => {
    const config = { ...env.config, EXTERNAL_API_URL: receiver.url };
    await insertEvents((i) => 1000 + i);
    cdc = await startCdc(config, log);
    proc = await startProcessor(config, log);
    runners.push(
      await startSinkRunner(config, getSinkFactory('warehouse'), log),
      await startSinkRunner(config, getSinkFactory('external'), log),
      await startSinkRunner(config, getSinkFactory('redis'), log),
    );
    const first = await db.query<{ id: string }>('SELECT id::text AS id FROM engagement_events');
    await waitFor(
      'the first events in both sinks',
      async () => (await warehouseRows()).length === N && receiver.stats().events_unique === N,
      60_000,
    );

    await db.query('TRUNCATE engagement_events RESTART IDENTITY');
    // One new event with an implausible duration: stored with its flag, not dropped.
    await insertEvents((i) => (i === 0 ? 2147483647 : 2000 + i));
    const second = await db.query<{ id: string }>('SELECT id::text AS id FROM engagement_events');
    assert.deepEqual(
      second.rows.map((r) => r.id).sort(),
      first.rows.map((r) => r.id).sort(),
      'the new events reuse the old ids',
    );

    await waitFor(
      'the new events in both sinks',
      async () => (await warehouseRows()).length === 2 * N && receiver.stats().events_unique === 2 * N,
      {
        timeoutMs: 60_000,
        describe: async () => ({ warehouse: (await warehouseRows()).length, receiver: receiver.stats() }),
      },
    );
    const rows = await warehouseRows();
    assert.equal(new Set(rows.map((r) => r.id)).size, N, 'each id twice: an old and a new event');
    assert.equal(new Set(rows.map((r) => `${r.id}@${r.ts}`)).size, 2 * N);
    assert.equal(rows.filter((r) => r.flags.includes('implausible_duration')).length, 1);
    assert.equal(new Set(receiver.eventKeys()).size, 2 * N);
    await waitFor(
      'the TRUNCATE counted',
      async () => (await truncates()) === 1 && (cdc?.status().table_truncates ?? 0) === 1,
      20_000,
    );
    assert.deepEqual(cdc.status().last_truncate?.tables, ['public.engagement_events']);
    // /health shows it in the CDC's status (its heartbeat carries cdc.status()).
    const beat = startHeartbeat(config, 'cdc', () => cdc?.status() ?? {}, 200);
    const api = await startTestApi(config);
    try {
      const cdcStatus = async () =>
        ((await api.app.inject({ url: '/health' })).json() as HealthReport).stages.cdc?.instances[0]?.status;
      await waitFor('/health shows the TRUNCATE', async () => (await cdcStatus())?.table_truncates === 1, {
        timeoutMs: 20_000,
        describe: cdcStatus,
      });
    } finally {
      await api.close();
      await beat.stop();
    }

    // Redis: the 2N - 1 plausible events, not the implausible one (the API's /top-content reads the same).
    const redis = await adminClient(config);
    try {
      const live = reader(redis, config.REDIS_KEY_PREFIX, config.REDIS_AGGREGATION_WINDOW_MINUTES, () => Date.now());
      const plausibleSeconds = (N * 1000 + (N * (N - 1)) / 2 + (N - 1) * 2000 + (N * (N - 1)) / 2) / 1000;
      await waitFor(
        'Redis has the plausible events',
        async () => (await live.contentStats(CONTENT))?.events === 2 * N - 1,
        { timeoutMs: 20_000, describe: async () => live.contentStats(CONTENT) },
      );
      assert.equal((await live.contentStats(CONTENT))?.total_engagement_seconds, plausibleSeconds);
      assert.equal((await live.topContent({ limit: 1 }))[0]?.engagement_seconds, plausibleSeconds);
    } finally {
      await wipe(redis, config.REDIS_KEY_PREFIX);
      await redis.close();
    }

    // Re-delivery: the enriched records written again through each sink, twice, as a replay would.
    for (const r of runners.splice(0)) await r.stop();
    const events = parseValues<EnrichedEvent>(await readTopic(config.kafkaBrokers, config.KAFKA_TOPIC_ENRICHED));
    assert.equal(events.length, 2 * N);
    const batch: SinkBatch = {
      topic: 'replay:test',
      partition: 0,
      records: events.map((event, i) => ({
        topic: 'replay:test',
        partition: 0,
        offset: String(i),
        key: event.content_id,
        event,
      })),
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
  },
);
