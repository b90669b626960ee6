import os from 'node:os';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { histogramQuantile, type Bucket } from '../src/api/metrics/quantile.js';
import { startCdc, type CdcComponent } from '../src/cdc/cdc.js';
import { createLogger } from '../src/core/logger.js';
import { registry } from '../src/core/metrics.js';
import { createTestEnv } from '../test/helpers/env.js';
import { INSERT } from './cdc.bench.js';
import { snapshotRecords, txnProduceCeiling } from './lib/txn-produce-ceiling.js';
import type { BenchResult } from './types.js';

/**
 * `npm run bench -- snapshot`: the incremental snapshot (CDC_SNAPSHOT_MODE=incremental, default
 * chunk size, no rate limit) of a 1,000,000-row engagement_events table, in its own database,
 * topics and slot, while a writer commits 1,000 rows/s (100 transactions of 10 rows a second):
 *
 * 1. the ceiling: `COPY engagement_events TO STDOUT` of the same table in the same run, to a
 *    byte-counting sink (the fastest PostgreSQL hands the rows out; best of two, after a first
 *    read has warmed the cache for both);
 * 2. the snapshot's rate: rows read (`engage_cdc_rows_total{op="r"}`) over the time from the CDC
 *    streaming until its status shows no snapshot running — chunks are written to Kafka as they go;
 * 3. streaming freshness during the snapshot: p50/p99 of `engage_cdc_freshness_seconds`
 *    (PostgreSQL commit → Kafka commit of every streamed transaction) over the snapshot only, and
 *    the same over 10 s after it, for comparison. Targets (issue #29): ≥ 50 % of the ceiling, p99 < 1 s;
 * 4. the Kafka side's own ceiling, after the CDC stopped: the same number of records, the
 *    snapshot's own (key and value sizes), written by the CDC's transactional producer and writer
 *    in transactions of one chunk each, with no PostgreSQL (lib/txn-produce-ceiling.ts) — what the
 *    broker and client take on this machine, which may bind far below COPY. The snapshot's rate is
 *    given against both; the target stays the COPY one.
 */

const ROWS = 1_000_000;
const WRITES_PER_S = 100;
const ROWS_PER_WRITE = 10;
const AFTER_SECONDS = 10;
/** Distinct records the produce ceiling cycles through (more than a produce batch holds). */
const SAMPLE_ROWS = 50_000;

async function copyOut(db: pg.Client): Promise<{ ms: number; bytes: number }> {
  const t0 = Date.now();
  let bytes = 0;
  await pipeline(
    db.query(copyTo('COPY engagement_events TO STDOUT')),
    new Writable({
      write(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        done();
      },
    }),
  );
  return { ms: Date.now() - t0, bytes };
}

/** The CDC's freshness histogram for `slot`, cumulative buckets. */
async function freshness(slot: string): Promise<Bucket[]> {
  const metric = registry.getSingleMetric('engage_cdc_freshness_seconds');
  const got = metric ? await metric.get() : { values: [] };
  return got.values
    .filter(
      (v) =>
        (v as { metricName?: string }).metricName === 'engage_cdc_freshness_seconds_bucket' && v.labels.slot === slot,
    )
    .map((v) => ({ le: v.labels.le === '+Inf' ? Infinity : Number(v.labels.le), count: v.value }));
}

function quantileMs(q: number, before: Bucket[], after: Bucket[]): number {
  const diff = after.map((b) => ({ le: b.le, count: b.count - (before.find((x) => x.le === b.le)?.count ?? 0) }));
  const v = histogramQuantile(q, diff);
  return v === null ? NaN : Math.round(v * 1000);
}

async function snapshotRows(slot: string): Promise<number> {
  const metric = registry.getSingleMetric('engage_cdc_rows_total');
  const got = metric ? await metric.get() : { values: [] };
  return got.values
    .filter((v) => v.labels.slot === slot && v.labels.op === 'r' && v.labels.table === 'engagement_events')
    .reduce((n, v) => n + v.value, 0);
}

function load(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
}

export async function run(): Promise<BenchResult[]> {
  const env = await createTestEnv({
    CDC_SNAPSHOT_MODE: 'incremental',
    CDC_SNAPSHOT_CHUNK_ROWS: process.env.CDC_SNAPSHOT_CHUNK_ROWS ?? '10000',
    LOG_LEVEL: 'warn',
  });
  const { config } = env;
  const slot = config.CDC_SLOT_NAME;
  const db = new pg.Client({ connectionString: config.databaseUrl });
  const wdb = new pg.Client({ connectionString: config.databaseUrl });
  await db.connect();
  await wdb.connect();
  let cdc: CdcComponent | undefined;
  let writing = true;
  let writer: Promise<void> = Promise.resolve();
  try {
    for (let i = 0; i < 10; i++) await db.query(INSERT(ROWS / 10, 'pre'));
    await db.query('VACUUM ANALYZE engagement_events');

    await copyOut(db); // warms the cache for both reads
    const copies = [await copyOut(db), await copyOut(db)];
    const copy = copies.reduce((a, b) => (a.ms <= b.ms ? a : b));
    const copyLoad = load();

    writer = (async () => {
      let n = 0;
      const t0 = Date.now();
      while (writing) {
        await wdb.query(INSERT(ROWS_PER_WRITE, 'live'));
        n++;
        const ahead = t0 + (n * 1000) / WRITES_PER_S - Date.now();
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead)); // the writer's pacing
      }
    })();
    const before = await freshness(slot);
    const cpu0 = process.cpuUsage();
    const s0 = Date.now();
    // info: the snapshot's "table read" line says where its time went (SELECTs, watermarks, stream).
    cdc = await startCdc(config, createLogger('info', 'snapshot-bench'));
    const c = cdc;
    const streamingAt = Date.now();
    const snapLoad = load();
    let seen = false;
    for (;;) {
      const running = c.status().incremental_snapshot !== null;
      seen ||= running;
      if (seen && !running) break;
      if (Date.now() - s0 > 1_800_000) throw new Error('bench: the snapshot did not finish in 30 min');
      await new Promise((r) => setTimeout(r, 20));
    }
    const snapMs = Date.now() - streamingAt;
    const cpu = process.cpuUsage(cpu0);
    const during = await freshness(slot);
    await new Promise((r) => setTimeout(r, 1000)); // the last chunk's Kafka commit
    const rows = await snapshotRows(slot);
    await new Promise((r) => setTimeout(r, AFTER_SECONDS * 1000)); // the comparison phase is this long
    const afterPhase = await freshness(slot);
    const afterLoad = load();
    writing = false;
    await writer;
    await cdc.stop();
    cdc = undefined;
    const chunkRows = config.CDC_SNAPSHOT_CHUNK_ROWS;
    const samples = await snapshotRecords(config, 'public.engagement_events', SAMPLE_ROWS);
    const produced = await txnProduceCeiling(config, config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, samples, ROWS, chunkRows);
    const rate = Math.round(rows / (snapMs / 1000));
    const ceiling = Math.round(ROWS / (copy.ms / 1000));
    return [
      {
        name: `COPY engagement_events TO STDOUT (${ROWS.toLocaleString('en-US')} rows): ceiling`,
        value: ceiling,
        unit: 'rows/s',
        note: `${(copy.bytes / 2 ** 20).toFixed(0)} MiB in ${copy.ms} ms, load ${copyLoad}`,
      },
      {
        name: 'incremental snapshot, 1,000 rows/s streamed meanwhile',
        value: rate,
        unit: 'rows/s',
        note: `${rows} rows in ${snapMs} ms (CDC up in ${streamingAt - s0} ms before), chunks of ${config.CDC_SNAPSHOT_CHUNK_ROWS}, load ${snapLoad}`,
      },
      {
        // Less bent by other load than the rate: the CDC's process (all its threads, librdkafka's
        // included; the writer's few queries too) from its start to the snapshot's end, per row.
        name: 'CPU of the CDC process per snapshot row',
        value: Math.round(((cpu.user + cpu.system) / rows) * 100) / 100,
        unit: 'µs',
      },
      { name: 'snapshot / COPY ceiling (target ≥ 50 %)', value: Math.round((rate / ceiling) * 100), unit: '%' },
      {
        name: `Kafka produce ceiling: ${ROWS.toLocaleString('en-US')} snapshot records, no PostgreSQL`,
        value: produced.recordsPerSecond,
        unit: 'records/s',
        note: `${(produced.bytes / ROWS).toFixed(0)} B/record (key + value), transactions of ${chunkRows}, ${produced.ms} ms, CDC producer and writer, load ${load()}`,
      },
      {
        name: 'snapshot / Kafka produce ceiling',
        value: Math.round((rate / produced.recordsPerSecond) * 100),
        unit: '%',
      },
      { name: 'streaming freshness p50 during the snapshot', value: quantileMs(0.5, before, during), unit: 'ms' },
      {
        name: 'streaming freshness p99 during the snapshot (target < 1 s)',
        value: quantileMs(0.99, before, during),
        unit: 'ms',
      },
      {
        name: `streaming freshness p99, ${AFTER_SECONDS} s after the snapshot`,
        value: quantileMs(0.99, during, afterPhase),
        unit: 'ms',
        note: `load ${afterLoad}`,
      },
    ];
  } finally {
    writing = false;
    await writer.catch(() => undefined);
    await cdc?.stop().catch(() => undefined);
    await db.end();
    await wdb.end();
    await env.cleanup();
  }
}
