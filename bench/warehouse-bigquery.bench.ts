import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os, { loadavg } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig, type Config } from '../src/config/load.js';
import { deletePipelineTopics, ensureTopics } from '../src/kafka/admin.js';
import { startSinkRunner } from '../src/runtime/sink-runner.js';
import { sleep } from '../src/runtime/retry.js';
import { warehouseSinkFactory } from '../src/sinks/warehouse/index.js';
import { FakesProcess } from './lib/bigquery-fakes-client.js';
import { freshnessPhase, type Freshness } from './lib/bigquery-freshness.js';
import { EVENTS, fill } from './lib/sink-fixtures.js';
import type { BenchResult } from './types.js';

/**
 * `npm run bench -- bigquery`: the warehouse sink through the runtime (`engage sink warehouse`
 * minus the process start: Kafka → runner → sink) into BigQuery on the Storage Write API — against
 * the local fakes, run as a process of their own (bench/lib/bigquery-fakes-process.ts) — beside the
 * same sink into DuckDB, over the same filled topic, each with its default batch size and
 * concurrency and a batch waiting 1 s at most, in interleaved rounds (A B, B A, …: this machine is shared, so the two are measured
 * under the same load). Reports each backend's median events/s and the ratio, the CPU per event
 * of the sink's process and of the fakes' (which check every row on the same cores), and — unless
 * BENCH_BIGQUERY_FRESHNESS_SECONDS is 0 — the freshness at 1,000 events/s with the default
 * batching (bench/lib/bigquery-freshness.ts). Between rounds the fakes convert the rows of the
 * round just run (`settle`), which they would otherwise do during the next round. NOT the real
 * service: the fake's latency is a loopback round trip, and its checks share this machine's CPU.
 */

const ROUNDS = Number(process.env.BENCH_BIGQUERY_ROUNDS ?? 3);
const FRESHNESS_SECONDS = Number(process.env.BENCH_BIGQUERY_FRESHNESS_SECONDS ?? 40);
const FRESHNESS_RATE = 1000;

/** The warehouse sink through the runtime until every event is written: wall seconds and process CPU seconds. */
async function through(config: Config): Promise<{ seconds: number; cpuSeconds: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const runner = await startSinkRunner(config, warehouseSinkFactory, pino({ level: 'error' }));
  try {
    const deadline = Date.now() + 600_000;
    for (;;) {
      const snap = runner.snapshot();
      if (snap.recordsOut + snap.dlq >= EVENTS) break;
      if (Date.now() > deadline) throw new Error(`only ${snap.recordsOut} of ${EVENTS} written after 600 s`);
      await sleep(5);
    }
  } finally {
    await runner.stop();
  }
  const cpu = process.cpuUsage(cpu0);
  return { seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

export async function run(): Promise<BenchResult[]> {
  const id = `bqbench${randomBytes(3).toString('hex')}`;
  const work = mkdtempSync(path.join(os.tmpdir(), 'engage-bq-bench-'));
  const base: Config = {
    ...loadConfig(),
    KAFKA_TOPIC_ENRICHED: `${id}.enriched`,
    KAFKA_TOPIC_DLQ: `${id}.dlq`,
    KAFKA_TOPIC_ENGAGEMENT_EVENTS: `${id}.events`,
    KAFKA_TOPIC_CONTENT: `${id}.content`,
    KAFKA_TOPIC_CDC_POSITION: `${id}.cdc-position`,
    KAFKA_TOPIC_PARTITIONS: 3,
    BATCH_SIZE: undefined,
    // A batch waits at most 1 s (DuckDB's default; BigQuery's is 10 s): the backlog's last, partial
    // batch of each partition would otherwise wait 10 s and the figure measure the timer.
    WAREHOUSE_FLUSH_SECONDS: 1,
  };
  await ensureTopics(base);
  const avgBytes = await fill(base);
  const fakes = await FakesProcess.start();
  const rates = { duckdb: [] as number[], bigquery: [] as number[] };
  const cpu = { duckdb: [] as number[], bigquery: [] as number[] };
  const fakeCpu: number[] = [];
  let fresh: Freshness | null = null;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? (['duckdb', 'bigquery'] as const) : (['bigquery', 'duckdb'] as const);
      for (const backend of order) {
        // A new consumer group (client id) and a new destination each time: every run reads the topic from the start.
        const config: Config =
          backend === 'duckdb'
            ? {
                ...base,
                KAFKA_CLIENT_ID: `${id}-d${round}`,
                DUCKDB_PATH: path.join(work, `r${round}.duckdb`),
                warehouse: 'duckdb',
              }
            : {
                ...base,
                KAFKA_CLIENT_ID: `${id}-b${round}`,
                warehouse: 'bigquery',
                BIGQUERY_PROJECT_ID: 'bench-project',
                BIGQUERY_DATASET_ID: `${id}_r${round}`,
                BIGQUERY_API_ENDPOINT: fakes.rest,
                BIGQUERY_STORAGE_API_ENDPOINT: fakes.storage,
                BIGQUERY_WRITE_API: 'storage',
              };
        const fakeCpu0 = await fakes.cpuSeconds();
        const r = await through(config);
        rates[backend].push(EVENTS / r.seconds);
        cpu[backend].push((r.cpuSeconds / EVENTS) * 1e6);
        if (backend === 'bigquery') {
          fakeCpu.push((((await fakes.cpuSeconds()) - fakeCpu0) / EVENTS) * 1e6);
          const { rows } = await fakes.ask<{ rows: number }>(`settle ${config.BIGQUERY_DATASET_ID}`);
          if (rows !== EVENTS) throw new Error(`the fake holds ${rows} fact rows of round ${round + 1}, not ${EVENTS}`);
        }
        console.error(`bench bigquery: round ${round + 1} ${backend} ${Math.round(EVENTS / r.seconds)} events/s`);
      }
    }
    if (FRESHNESS_SECONDS > 0)
      fresh = await freshnessPhase(base, fakes, { id, seconds: FRESHNESS_SECONDS, rate: FRESHNESS_RATE });
  } finally {
    await fakes.stop();
    rmSync(work, { recursive: true, force: true });
    await deletePipelineTopics(base).catch(() => undefined);
  }
  const [bq, duck] = [median(rates.bigquery), median(rates.duckdb)];
  // Each round's two runs share the machine's load at that moment: their ratio is the fair one.
  const paired = rates.bigquery.map((b, i) => b / (rates.duckdb[i] ?? Number.NaN));
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  const each = (xs: number[]) => xs.map((x) => Math.round(x)).join(', ');
  const common = `${EVENTS} events of ~${Math.round(avgBytes)} B, 3 partitions, default batch sizes, 1 s at most, consumer start included; median of ${ROUNDS} interleaved rounds`;
  return [
    {
      name: 'warehouse sink through the runtime → BigQuery Storage Write API (local fake, own process)',
      value: Math.round(bq),
      unit: 'events/s',
      note: `${common} (${each(rates.bigquery)}); 16,384-row flushes, 8 partitions at once; ${median(cpu.bigquery).toFixed(1)} µs CPU per event in the sink process, ${median(fakeCpu).toFixed(1)} in the fakes' (${fakeCpu.map((c) => c.toFixed(1)).join(', ')}); load average ${load}`,
    },
    {
      name: 'warehouse sink through the runtime → DuckDB (same run)',
      value: Math.round(duck),
      unit: 'events/s',
      note: `${common} (${each(rates.duckdb)}); ${median(cpu.duckdb).toFixed(1)} µs CPU per event`,
    },
    {
      name: 'BigQuery (Storage Write API, fake) ÷ DuckDB through the runtime, median of the rounds',
      value: Math.round(median(paired) * 100) / 100,
      unit: 'ratio',
      note: `each round's pair ${paired.map((r) => r.toFixed(2)).join(', ')}; the medians' ratio ${(bq / duck).toFixed(2)}; target ≥ 0.8 (issue #28)`,
    },
    ...(fresh ? [freshnessResult(fresh)] : []),
  ];
}

function freshnessResult(f: Freshness): BenchResult {
  const s = (ms: number | null) => (ms === null ? '?' : (ms / 1000).toFixed(1));
  return {
    name: `BigQuery (fake) freshness at ${FRESHNESS_RATE} events/s, default batching: p99 topic → visible`,
    value: f.p99 === null ? Number.NaN : Math.round(f.p99) / 1000,
    unit: 's',
    note: `${FRESHNESS_SECONDS} s of ${FRESHNESS_RATE} events/s (${f.sent} sent, ${f.rows} seen committed), source_ts_ms → BatchCommitWriteStreams in the fake: p50 ${s(f.p50)} s, p99 ${s(f.p99)} s, max ${s(f.max)} s; target ≤ 30 s (the seed's; the sink's freshness target is 45 s)`,
  };
}
