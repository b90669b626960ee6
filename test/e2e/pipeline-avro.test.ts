import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { eventKey } from '../../src/core/event-identity.js';
import type { DlqEntry, EnrichedEvent } from '../../src/core/types.js';
import { generateBatch } from '../../src/generator/modes.js';
import { connectConfiguredRegistry } from '../../src/kafka/schema-registry/from-config.js';
import { startReceiver } from '../../src/receiver/index.js';
import { Supervisor, componentSpecs } from '../../src/supervisor/supervisor.js';
import { avroOverrides } from '../helpers/avro-fixtures.js';
import { createTestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';
import { parseValues, readTopic } from '../processor/kafka-helpers.js';
import { insertBadRows, logTails, PIPELINE_COMPONENTS } from './pipeline-run.js';
import { groupCaughtUp, readRedisWindow, warehouseKeys, queryWarehouse } from './sink-reads.js';

/**
 * Avro end to end (KAFKA_VALUE_FORMAT=avro; issue 31), short: PostgreSQL → engage cdc → engage
 * process → engage sink redis / warehouse (DuckDB) / external (the reference receiver) / file, every
 * component a supervised child process as `engage run` starts them, on the shared stack and its
 * registry. Every sink gets every valid event once, with the enrichment PostgreSQL's rows and
 * content give; the bad rows reach the DLQ; every record of the events, content and enriched topics
 * is Avro that the library's stock AvroDeserializer reads.
 */

const EVENTS = 1000;

test(
  'Avro end to end: every sink gets every event once, enriched; the topics are Avro',
  { timeout: 180_000 },
  async () => {
    const receiver = await startReceiver({ port: 0 });
    const fileDir = mkdtempSync(path.join(os.tmpdir(), 'engage-avro-file-'));
    const logsDir = mkdtempSync(path.join(os.tmpdir(), 'engage-avro-logs-'));
    const env = await createTestEnv({
      ...avroOverrides(),
      EXTERNAL_API_URL: receiver.url,
      FILE_SINK_DIR: fileDir,
      WAREHOUSE_FLUSH_SECONDS: '0.5',
      PROCESSING_INTERVAL_SECONDS: '0.2',
      PROCESSOR_SESSION_TIMEOUT_MS: '6000',
    });
    const config = env.config;
    const db = new pg.Client({ connectionString: config.databaseUrl });
    await db.connect();
    const sup = new Supervisor(
      componentSpecs(config, {
        generator: false,
        rate: 0,
        receiver: false,
        api: false,
        sinks: ['redis', 'warehouse', 'external', 'file'],
      }),
      logsDir,
      env.env,
    );
    let passed = false;
    try {
      sup.start();
      await generateBatch(config, { batchSize: EVENTS, seed: 31, windowMinutes: 2 });
      const bad = new Set((await insertBadRows(db)).map((r) => r.id));
      const rows = await db.query<{
        id: string;
        key_us: string;
        slug: string;
        length: number | null;
        duration: number | null;
      }>(
        `SELECT e.id::text AS id, (extract(epoch FROM e.event_ts) * 1000000)::bigint::text AS key_us, c.slug,
              c.length_seconds AS length, e.duration_ms AS duration
         FROM engagement_events e JOIN content c ON c.id = e.content_id`,
      );
      const expected = new Map(rows.rows.filter((r) => !bad.has(r.id)).map((r) => [`${r.id}@${r.key_us}`, r]));
      assert.equal(expected.size, EVENTS);

      const fileEvents = (): EnrichedEvent[] =>
        readdirSync(fileDir)
          .filter((f) => f.endsWith('.jsonl'))
          .flatMap((f) => readFileSync(path.join(fileDir, f), 'utf8').split('\n').filter(Boolean))
          .map((l) => (JSON.parse(l) as { event: EnrichedEvent }).event);
      try {
        await waitFor(
          'every sink to hold every event',
          async () => {
            const redis = await readRedisWindow(config).catch(() => ({ total: -1 }));
            return (
              receiver.stats().events_unique >= EVENTS &&
              redis.total >= EVENTS &&
              fileEvents().length >= EVENTS &&
              (await groupCaughtUp(config, `engage-sink-warehouse.${config.KAFKA_CLIENT_ID}`))
            );
          },
          { timeoutMs: 120_000, everyMs: 1000 },
        );
      } catch (err) {
        console.log(logTails(logsDir, 15, [...PIPELINE_COMPONENTS, 'sink-file']));
        throw err;
      }
      await sup.stop();

      const sameKeys = (what: string, keys: string[]) => {
        assert.equal(keys.length, expected.size, `${what}: one per event`);
        assert.deepEqual(new Set(keys), new Set(expected.keys()), `${what}: the events of PostgreSQL`);
      };
      sameKeys('warehouse', await warehouseKeys(config.DUCKDB_PATH));
      sameKeys('receiver', receiver.eventKeys());
      sameKeys('redis', [...(await readRedisWindow(config)).keys]);
      const file = fileEvents();
      sameKeys('file', file.map(eventKey));

      // The enrichment: the content joined and the engagement computed, in every sink.
      const check = (what: string, key: string, slug: unknown, pct: unknown) => {
        const r = expected.get(key);
        const want = r?.duration == null || !r.length ? null : (r.duration / 1000 / r.length) * 100;
        assert.equal(slug, r?.slug, `${what} ${key}: content_slug`);
        if (want === null) assert.equal(pct, null, `${what} ${key}: engagement_pct`);
        else assert.ok(Math.abs(Number(pct) - want) < 1e-6, `${what} ${key}: engagement_pct ${String(pct)} ≠ ${want}`);
      };
      for (const e of file) check('file', eventKey(e), e.content_slug, e.engagement_pct);
      for (const e of file)
        assert.equal(typeof e.raw_payload === 'object', true, 'raw_payload parsed back from its JSON text');
      for (const [key] of expected) {
        const e = receiver.event(key)?.event;
        if (e) check('receiver', key, e.content_slug, e.engagement_pct);
      }
      const wh = await queryWarehouse(
        config.DUCKDB_PATH,
        'SELECT event_id::VARCHAR AS id, epoch_us(event_ts)::VARCHAR AS us, content_slug, engagement_pct FROM engagement_events_enriched',
      );
      for (const r of wh) check('warehouse', `${String(r.id)}@${String(r.us)}`, r.content_slug, r.engagement_pct);

      // The bad rows in the DLQ, their original bytes Avro.
      const dlq = parseValues<DlqEntry>(await readTopic(config.kafkaBrokers, config.KAFKA_TOPIC_DLQ, 60000));
      assert.equal(dlq.length, bad.size, 'DLQ: the bad rows, nothing else');
      const sr = await connectConfiguredRegistry(config);
      const { avro, serde } = sr.serdes;
      const stock = (role: 'key' | 'value') =>
        new avro.AvroDeserializer(sr.client, role === 'key' ? serde.SerdeType.KEY : serde.SerdeType.VALUE, {});
      const parked = await Promise.all(
        dlq.map((e) => stock('value').deserialize(e.topic, Buffer.from(e.value_base64 ?? '', 'base64'))),
      );
      assert.deepEqual(
        new Set(parked.map((v) => String((v as { after: { id: number } }).after.id))),
        bad,
        'DLQ: the bad rows, as the stock deserializer reads their bytes',
      );

      // Every record of the data topics is Avro the stock deserializer reads (keys too, but the enriched topic's plain-text content id).
      for (const [topic, keyed] of [
        [config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, true],
        [config.KAFKA_TOPIC_CONTENT, true],
        [config.KAFKA_TOPIC_ENRICHED, false],
      ] as const) {
        const records = await readTopic(config.kafkaBrokers, topic, 60000);
        assert.ok(records.length > 0, `${topic} has records`);
        for (const m of records) {
          if (m.value !== null) {
            assert.equal(m.value[0], 0, `${topic} value in the Confluent wire format`);
            assert.ok(await stock('value').deserialize(topic, m.value));
          }
          if (keyed) assert.ok(await stock('key').deserialize(topic, m.key as Buffer), `${topic} key`);
          else assert.equal(String(m.key), (await stock('value').deserialize(topic, m.value as Buffer)).content_id);
        }
      }
      passed = true;
    } finally {
      await sup.stop().catch(() => undefined);
      await db.end();
      await receiver.close();
      await env.cleanup();
      rmSync(fileDir, { recursive: true, force: true });
      if (passed) rmSync(logsDir, { recursive: true, force: true });
      else console.log(`component logs kept in ${logsDir}`);
    }
  },
);
