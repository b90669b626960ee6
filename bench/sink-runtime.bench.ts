import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os, { loadavg } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig, type Config } from '../src/config/load.js';
import { deletePipelineTopics, ensureTopics } from '../src/kafka/admin.js';
import { startSinkRunner, type SinkRunnerOptions } from '../src/runtime/sink-runner.js';
import { sleep } from '../src/runtime/retry.js';
import type { Sink, SinkFactory } from '../src/core/sink-contract.js';
import { getSinkFactory } from '../src/sinks/registry.js';
import { EVENTS, fill, startReceiverProcess } from './lib/sink-fixtures.js';
import type { BenchResult } from './types.js';

/**
 * The sink runtime's own ceiling: events/s from the enriched topic through the runner (consume,
 * JSON decode, per-partition batching, an empty sink write, the offset commit) into a sink that
 * does nothing. No real sink can go faster than this through the runtime. Then each real sink
 * alone, the same way (`engage sink <name>` minus the process start): Redis, DuckDB (a temp file),
 * the external sink into the reference receiver run as its own process. Own topics per run.
 */

const BATCH = 5_000;

/**
 * Runs one sink through the runtime over the filled topic; resolves with wall seconds (start to
 * stopped), the steady rate (records written after the first write, over the time from it to the
 * last), and process CPU seconds.
 */
async function through(
  config: Config,
  factory: SinkFactory,
  opts: SinkRunnerOptions = {},
): Promise<{ seconds: number; firstWriteSeconds: number; steady: number; cpuSeconds: number; pauses: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const runner = await startSinkRunner(config, factory, pino({ level: 'error' }), opts);
  let first: { at: number; out: number } | undefined;
  let last = t0;
  try {
    const deadline = Date.now() + 300_000;
    for (;;) {
      const snap = runner.snapshot();
      const out = snap.recordsOut + snap.dlq;
      if (first === undefined && out > 0) first = { at: performance.now(), out };
      if (out >= EVENTS) {
        last = performance.now();
        break;
      }
      if (Date.now() > deadline)
        throw new Error(`${factory.name}: only ${snap.recordsOut} of ${EVENTS} written after 300 s`);
      await sleep(5);
    }
  } finally {
    await runner.stop();
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const steady = first && last > first.at ? (EVENTS - first.out) / ((last - first.at) / 1000) : Number.NaN;
  const firstWriteSeconds = first ? (first.at - t0) / 1000 : Number.NaN;
  return {
    seconds,
    firstWriteSeconds,
    steady,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    pauses: runner.snapshot().pauses,
  };
}

export async function run(): Promise<BenchResult[]> {
  const id = `bench${randomBytes(3).toString('hex')}`;
  const base = loadConfig();
  const work = mkdtempSync(path.join(os.tmpdir(), 'engage-sink-bench-'));
  const config: Config = {
    ...base,
    KAFKA_TOPIC_ENRICHED: `${id}.enriched`,
    KAFKA_TOPIC_DLQ: `${id}.dlq`,
    KAFKA_TOPIC_ENGAGEMENT_EVENTS: `${id}.events`,
    KAFKA_TOPIC_CONTENT: `${id}.content`,
    KAFKA_TOPIC_CDC_POSITION: `${id}.cdc-position`,
    KAFKA_TOPIC_PARTITIONS: 3,
    KAFKA_CLIENT_ID: `engage-${id}`,
    DUCKDB_PATH: path.join(work, 'bench.duckdb'),
    BATCH_SIZE: 20_000,
    WAREHOUSE_FLUSH_SECONDS: 1,
  };
  await ensureTopics(config);
  const avgBytes = await fill(config);
  let writes = 0;
  const sink: Sink = {
    name: 'noop',
    start: async () => undefined,
    storedOffsets: async () => null,
    write: async () => {
      writes++;
    },
    close: async () => undefined,
  };
  const factory: SinkFactory = { name: 'noop', create: () => sink };
  const noop = await through(config, factory, { batching: { maxRecords: BATCH, maxWaitMs: 100 } });
  const { seconds, cpuSeconds } = noop;
  const results: BenchResult[] = [
    {
      name: 'sink runtime → no-op sink (consume, decode, batch, commit)',
      value: Math.round(EVENTS / seconds),
      unit: 'events/s',
      note: `${EVENTS} events of ~${Math.round(avgBytes)} B, 3 partitions, batches of ${BATCH}, ${writes} writes, ${noop.pauses} backpressure pauses, includes consumer start and group join (first write after ${noop.firstWriteSeconds.toFixed(1)} s; ${Math.round(noop.steady)} events/s from it to the last)`,
    },
    {
      name: 'sink runtime CPU per 1,000 events',
      value: Math.round((cpuSeconds / EVENTS) * 1000 * 1000) / 1000,
      unit: 'CPU-s',
      note: `${cpuSeconds.toFixed(1)} CPU-s in ${seconds.toFixed(1)} s`,
    },
    {
      name: 'sink runtime CPU per event',
      value: Math.round((cpuSeconds / EVENTS) * 1e6 * 10) / 10,
      unit: 'µs',
      note: `process CPU; load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    },
  ];

  // Each real sink alone, as `engage sink <name>` runs it: the same topic from the start, its own group.
  const receiver = await startReceiverProcess();
  const hotTopic = `${id}.enriched-hot`;
  try {
    for (const name of ['redis', 'warehouse', 'external']) {
      const sinkConfig: Config = { ...config, EXTERNAL_API_URL: receiver.url };
      const r = await through(sinkConfig, getSinkFactory(name));
      const batching = name === 'warehouse' ? 'BATCH_SIZE 20,000' : 'its default batching';
      results.push({
        name: `${name} sink through the runtime (Kafka → ${name === 'external' ? 'reference receiver' : name === 'redis' ? 'Redis' : 'DuckDB'})`,
        value: Math.round(EVENTS / r.seconds),
        unit: 'events/s',
        note: `${EVENTS} events, 3 partitions, ${batching}, consumer start included (${Math.round(r.steady)} events/s from its first write to its last); ${((r.cpuSeconds / EVENTS) * 1e6).toFixed(1)} µs CPU per event in the sink process (${name === 'redis' ? 'redis-server' : name === 'external' ? 'the receiver process' : 'DuckDB is in-process'}${name === 'warehouse' ? '' : ' not counted'}); load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
      });
    }
    // Skewed keys (the generator's Zipf popularity) make one partition hold most of a backlog, and
    // a partition's batches are written one after another: its pause/resume cycle sets the pace.
    const hot: Config = {
      ...config,
      KAFKA_TOPIC_ENRICHED: hotTopic,
      KAFKA_TOPIC_PARTITIONS: 6,
      EXTERNAL_API_URL: receiver.url,
    };
    await ensureTopics(hot);
    await fill(hot, EVENTS, 'content-7'); // new event ids: the receiver has counted the first fill's
    const r = await through(hot, getSinkFactory('external'));
    results.push({
      name: 'external sink, one hot partition (every record on one of 6)',
      value: Math.round(EVENTS / r.seconds),
      unit: 'events/s',
      note: `${EVENTS} events, ${r.pauses} backpressure pauses, consumer start included (${Math.round(r.steady)} events/s from its first write to its last); ${((r.cpuSeconds / EVENTS) * 1e6).toFixed(1)} µs CPU per event in the sink process`,
    });
  } finally {
    await receiver.stop();
    rmSync(work, { recursive: true, force: true });
    await deletePipelineTopics(config).catch(() => undefined);
    await deletePipelineTopics({ ...config, KAFKA_TOPIC_ENRICHED: hotTopic }).catch(() => undefined);
  }
  return results;
}
