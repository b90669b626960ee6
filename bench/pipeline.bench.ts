import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../src/config/load.js';
import { generateBatch } from '../src/generator/modes.js';
import { createKafka } from '../src/kafka/client.js';
import { startReceiver } from '../src/receiver/index.js';
import { stackRemove, stackUp } from '../src/stack/stack.js';
import { readStackState } from '../src/config/stack-state.js';
import { Supervisor, componentSpecs } from '../src/supervisor/supervisor.js';
import { kafkaProducerCeiling, recvlogicalCeiling } from './lib/ceilings.js';
import { freshnessBetween, scrapeFreshness } from './lib/freshness.js';
import { lagTrend } from './lib/lag.js';
import { PhaseMeter } from './lib/proc-stats.js';
import { runEngage } from './lib/engage-process.js';
import { topicBytes } from './lib/topic-bytes.js';
import type { BenchResult } from './types.js';
import { lags, quiet, reportShares, say, sleep, SINKS, type Ctx } from './lib/pipeline-ctx.js';
import { formatPiiKeys } from '../src/config/pii-keys.js';

/**
 * The whole pipeline, every component its own process (as `engage run` runs them) on a stack of
 * its own, in one run:
 *  1. freshness per stage at 1,000 events/s (the pipeline's own histograms, this phase only);
 *  2. a burst of BURST events committed by COPY, timed until all three sinks hold every one;
 *  3. a backfill of the day the first two phases wrote (every event a duplicate for the sinks),
 *     timed until the warehouse has consumed it;
 *  4. a sustained rate (BENCH_PIPELINE_RATE events/s for BENCH_PIPELINE_SECONDS; the issue's run is
 *     10,000 for 600): lag of every stage sampled every 5 s, its trend, freshness at that rate;
 *  5. with the pipeline stopped, the ceilings: pg_recvlogical and Kafka's producer perf tool.
 * Each phase reports CPU (% of one core) and peak RSS per component, and the load average.
 */

const BURST = 100_000;
const RATE = Number(process.env.BENCH_PIPELINE_RATE ?? 10_000);
const SUSTAIN_SECONDS = Number(process.env.BENCH_PIPELINE_SECONDS ?? 120);
const LAG_SAMPLE_SECONDS = 5;
/** BENCH_PIPELINE_PHASES narrows the run, e.g. `fresh,sustain` (default: all five). The warehouse sink runs with
 *  BENCH_PIPELINE_BATCH_SIZE (default 20000) and BENCH_PIPELINE_WAREHOUSE_FLUSH_SECONDS (default 1). */
const PHASES = new Set((process.env.BENCH_PIPELINE_PHASES ?? 'fresh,burst,backfill,sustain,ceilings').split(','));
const API_PORT = 38080;
const API = `http://127.0.0.1:${API_PORT}`;
const today = () => new Date().toISOString().slice(0, 10);

async function eventCount(c: Ctx): Promise<number> {
  return Number((await c.db.query<{ n: string }>('SELECT count(*)::text AS n FROM engagement_events')).rows[0]?.n);
}

/** `engage generate --mode continuous` as its own process (as `engage run --with-generator` runs it). */
function generator(c: Ctx, rate: number, seconds: number): Promise<void> {
  const args = ['generate', '--mode', 'continuous', '--rate', String(rate), '--duration', String(seconds)];
  return runEngage([...args, '--seed', String(rate)], c.env, (pid) => (c.generatorPid = pid));
}

async function freshnessPhase(
  c: Ctx,
  rate: number,
  seconds: number,
  label: string,
  during?: () => Promise<void>,
): Promise<number> {
  say(`${label}: generating for ${seconds} s`);
  const before = await scrapeFreshness(API);
  const rows0 = await eventCount(c);
  c.meter.start();
  const t0 = Date.now();
  const gen = generator(c, rate, seconds);
  const ticker = setInterval(() => c.meter.sample(), 1000);
  if (during) await during();
  await gen;
  clearInterval(ticker);
  const rows = (await eventCount(c)) - rows0;
  const offered = rows / ((Date.now() - t0) / 1000);
  await sleep(4000); // heartbeats (every 2 s) carry the last observations to the API
  const after = await scrapeFreshness(API);
  for (const f of freshnessBetween(before, after)) {
    const note = `${f.count} observations${f.p99BucketMs ? `; p99 between the ${f.p99BucketMs[0]} and ${f.p99BucketMs[1]} ms buckets` : ''}`;
    const what = f.stage.includes(' ') ? `  duration at ${label}, ${f.stage}` : `freshness at ${label}, ${f.stage}`;
    c.out.push({ name: `${what}, p50`, value: f.p50Ms ?? Number.NaN, unit: 'ms' });
    c.out.push({ name: `${what}, p99`, value: f.p99Ms ?? Number.NaN, unit: 'ms', note });
  }
  reportShares(c, label, c.meter.finish(), rows);
  return offered;
}

async function sustainedPhase(c: Ctx): Promise<void> {
  const samples: Record<string, number[]> = {};
  const label = `${RATE.toLocaleString('en-US')} events/s for ${SUSTAIN_SECONDS} s`;
  const offered = await freshnessPhase(c, RATE, SUSTAIN_SECONDS, label, async () => {
    const end = Date.now() + SUSTAIN_SECONDS * 1000;
    while (Date.now() < end - 1000) {
      await sleep(LAG_SAMPLE_SECONDS * 1000);
      for (const [k, v] of Object.entries(await lags(c))) (samples[k] ??= []).push(v);
    }
  });
  c.out.push({
    name: `sustained: rate offered by the generator (target ${RATE.toLocaleString('en-US')})`,
    value: Math.round(offered),
    unit: 'events/s',
  });
  for (const [k, s] of Object.entries(samples)) {
    const t = lagTrend(s, LAG_SAMPLE_SECONDS);
    c.out.push({
      name: `sustained: lag ${k}, growth per second`,
      value: Math.round(t.growthPerSecond),
      unit: k.startsWith('cdc') ? 'bytes/s' : 'events/s',
      note: `first ${t.first}, last ${t.last}, max ${t.max}; ${s.length} samples`,
    });
  }
  say('sustained: waiting for every stage to drain');
  const drainMs = await quiet(c, 900_000);
  c.out.push({
    name: 'sustained: drain after the generator stopped',
    value: Math.round(drainMs / 100) / 10,
    unit: 's',
  });
}

async function burstPhase(c: Ctx, receiverCount: () => number): Promise<void> {
  await quiet(c, 300_000);
  say(`burst: ${BURST} events by COPY`);
  const before = receiverCount();
  c.meter.start();
  const t0 = Date.now();
  await generateBatch(c.config, { batchSize: BURST, seed: 10, windowMinutes: 2 });
  const inserted = Date.now() - t0;
  await quiet(c, 600_000);
  const seconds = (Date.now() - t0) / 1000;
  const delivered = receiverCount() - before;
  c.out.push({
    name: `end-to-end burst: ${BURST.toLocaleString('en-US')} events, PG commit → all three sinks`,
    value: Math.round(BURST / seconds),
    unit: 'events/s',
    note: `${seconds.toFixed(1)} s in all; the COPY took ${(inserted / 1000).toFixed(1)} s; receiver got ${delivered} new`,
  });
  reportShares(c, 'burst', c.meter.finish(), BURST);
  // The records' bytes on the topics, as a consumer receives them (KAFKA_VALUE_FORMAT's difference).
  for (const [what, topic] of [
    ['change events', c.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS],
    ['enriched events', c.config.KAFKA_TOPIC_ENRICHED],
  ] as const) {
    const b = await topicBytes(c.config, topic);
    c.out.push({
      name: `bytes per event on the topic: ${what}`,
      value: b.valueBytesPerRecord,
      unit: 'bytes',
      note: `record value; key ${b.keyBytesPerRecord} bytes; ${b.records.toLocaleString('en-US')} records read`,
    });
  }
}

async function backfillPhase(c: Ctx, env: NodeJS.ProcessEnv): Promise<void> {
  await quiet(c, 300_000);
  const day = today();
  const n = Number(
    (
      await c.db.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM engagement_events WHERE event_ts >= $1::date AND event_ts < $1::date + 1`,
        [day],
      )
    ).rows[0]?.n,
  );
  say(`backfill: ${n} events of ${day}`);
  c.meter.start();
  const t0 = Date.now();
  const range = ['--start-date', day, '--end-date', day];
  await runEngage(['process', '--mode', 'backfill', ...range, '--restart', '--no-progress'], env);
  const produced = (Date.now() - t0) / 1000;
  await quiet(c, 600_000);
  const all = (Date.now() - t0) / 1000;
  c.out.push({
    name: `backfill: ${n.toLocaleString('en-US')} events of one day, read → enriched topic`,
    value: Math.round(n / produced),
    unit: 'events/s',
    note: `${produced.toFixed(1)} s, process start included`,
  });
  c.out.push({
    name: '  backfill: until every sink has consumed it (all duplicates)',
    value: Math.round(n / all),
    unit: 'events/s',
    note: `${all.toFixed(1)} s`,
  });
  reportShares(c, 'backfill', c.meter.finish(), n);
}

/**
 * BENCH_PIPELINE_BROKERS: the private Kafka's node counts to run on, one after another in one
 * invocation (e.g. `1,3`: the same phases on one broker, then on a three-node cluster whose topics
 * have replication factor 3, min ISR 2, acks=all); each figure is then prefixed with its count.
 */
const BROKERS = (process.env.BENCH_PIPELINE_BROKERS ?? '1').split(',').map(Number);
/**
 * BENCH_PIPELINE_FORMATS: the KAFKA_VALUE_FORMATs to run the phases in, one after another on a
 * fresh stack each (default `json,avro`: the registry at SCHEMA_REGISTRY_URL or the stack's); each
 * figure is then prefixed with its format, and the Avro / JSON ratios of the comparable figures follow.
 */
const FORMATS = (process.env.BENCH_PIPELINE_FORMATS ?? 'json,avro').split(',').filter(Boolean);
const COMPARED = [
  '  burst: CPU per event, every process',
  'bytes per event on the topic: change events',
  'bytes per event on the topic: enriched events',
  '  1,000 events/s: CPU per event, every process',
];

export async function run(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const brokers of BROKERS) {
    const byFormat = new Map<string, BenchResult[]>();
    for (const format of FORMATS) {
      const results = await runOn(brokers, format);
      byFormat.set(format, results);
      const tag = [
        BROKERS.length > 1 ? `${brokers} broker${brokers > 1 ? 's' : ''}` : '',
        FORMATS.length > 1 ? format : '',
      ]
        .filter(Boolean)
        .join(', ');
      out.push(...(tag ? results.map((r) => ({ ...r, name: `[${tag}] ${r.name}` })) : results));
    }
    const json = byFormat.get('json');
    const avro = byFormat.get('avro');
    if (!json || !avro) continue;
    for (const name of COMPARED) {
      const a = avro.find((r) => r.name === name)?.value;
      const j = json.find((r) => r.name === name)?.value;
      if (a === undefined || j === undefined || j === 0) continue;
      out.push({ name: `Avro / JSON, ${name.trim()}`, value: Math.round((a / j) * 100) / 100, unit: '×' });
    }
  }
  return out;
}

async function runOn(brokers: number, format: string): Promise<BenchResult[]> {
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'engage-bench-stack-'));
  const work = mkdtempSync(path.join(os.tmpdir(), 'engage-bench-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    STACK_DIR: stackDir,
    STACK_PORT_OFFSET: process.env.BENCH_PIPELINE_PORT_OFFSET ?? '400',
    STACK_KAFKA_BROKERS: String(brokers),
    KAFKA_VALUE_FORMAT: format,
    DUCKDB_PATH: path.join(work, 'wh.duckdb'),
    LOG_LEVEL: 'warn',
    BATCH_SIZE: process.env.BENCH_PIPELINE_BATCH_SIZE ?? '20000',
    WAREHOUSE_FLUSH_SECONDS: process.env.BENCH_PIPELINE_WAREHOUSE_FLUSH_SECONDS ?? '1',
    API_PORT: String(API_PORT),
  };
  const base = loadConfig({ ...env });
  await stackUp(base);
  const receiver = await startReceiver({ port: 0 });
  const childEnv = {
    ...env,
    DATABASE_URL: base.databaseUrl,
    KAFKA_BOOTSTRAP_SERVERS: base.kafkaBrokers.join(','),
    REDIS_URL: base.redisUrl,
    EXTERNAL_API_URL: receiver.url,
    // DATABASE_URL set: the private stack's development pseudonym key is passed on (docs/security.md).
    PII_KEYS: env.PII_KEYS ?? formatPiiKeys(base.piiKeys),
  };
  const config = loadConfig(childEnv);
  const sup = new Supervisor(
    componentSpecs(config, { generator: false, rate: 0, receiver: false, api: true, sinks: [...SINKS] }),
    path.join(work, 'logs'),
    childEnv,
  );
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-bench`).admin();
  const db = new pg.Client({ connectionString: config.databaseUrl });
  // The stack's own servers, measured like the components (PostgreSQL with its backends).
  const services = readStackState(stackDir)?.services;
  const kafkaNodes = services?.kafka?.nodes ?? [{ id: 1, pid: services?.kafka?.pid }];
  const stackProcesses = [
    ...kafkaNodes.map((n) => ({ name: `kafka broker${brokers > 1 ? ` ${n.id}` : ''} (JVM)`, pid: n.pid })),
    { name: 'postgresql (all backends)', pid: services?.postgres?.pid, tree: true },
    { name: 'redis-server', pid: services?.redis?.pid },
    { name: 'this bench (reference receiver)', pid: process.pid },
  ].filter((p) => p.pid !== undefined);
  // A service whose address the environment gives (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, REDIS_URL)
  // is used, not started, by this bench: its process is not known, so it is not measured.
  const unmeasured = ['kafka', 'postgres', 'redis'].filter(
    (s) => services?.[s as keyof typeof services]?.pid === undefined,
  );
  // Components run detached and the stack is private: an interrupted bench must still stop both.
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await sup.stop();
      await receiver.close();
      await admin.disconnect().catch(() => undefined);
      await db.end().catch(() => undefined);
      await stackRemove(base);
      rmSync(work, { recursive: true, force: true });
    })());
  const interrupted = () => {
    say('interrupted: stopping the components and the bench stack');
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  const c: Ctx = {
    config,
    env: childEnv,
    admin,
    db,
    meter: new PhaseMeter(() => [
      ...sup.status().map((s) => ({ name: s.name, pid: s.pid })),
      ...stackProcesses,
      { name: 'generator', pid: c.generatorPid },
    ]),
    out: [],
  };
  if (unmeasured.length > 0)
    c.out.push({
      name: 'services not measured (given by the environment, not started here)',
      value: unmeasured.length,
      unit: 'services',
      note: `${unmeasured.join(', ')}: their CPU is in none of the shares below`,
    });
  try {
    await Promise.all([admin.connect(), db.connect()]);
    sup.start();
    for (let i = 0; i < 120; i++) {
      const h = await fetch(`${API}/health`)
        .then((r) => r.json() as Promise<{ status?: string }>)
        .catch(() => ({ status: undefined }));
      if (h.status === 'healthy') break;
      await sleep(1000);
    }
    // Warm-up: every consumer assigned and every stage through its first batches before measuring.
    say('warm-up: 200 events/s for 15 s');
    await generator(c, 200, 15);
    await quiet(c, 120_000);
    if (PHASES.has('fresh')) await freshnessPhase(c, 1000, 40, '1,000 events/s');
    if (PHASES.has('burst')) await burstPhase(c, () => receiver.stats().events_unique);
    if (PHASES.has('backfill')) await backfillPhase(c, childEnv);
    if (PHASES.has('sustain')) await sustainedPhase(c);
    await sup.stop();
    if (!PHASES.has('ceilings')) return c.out;
    say('ceilings: pg_recvlogical, Kafka ProducerPerformance');
    const recv = await recvlogicalCeiling(config, 300_000);
    c.out.push({
      name: 'ceiling: pg_recvlogical decoding 300,000 rows (pgoutput → /dev/null)',
      value: Math.round(recv.rowsPerSecond),
      unit: 'rows/s',
      note: `${recv.seconds.toFixed(1)} s`,
    });
    const kp = await kafkaProducerCeiling(config, 2_000_000, 700);
    c.out.push({
      name: 'ceiling: Kafka ProducerPerformance, 700-byte records, acks=all',
      value: Math.round(kp.recordsPerSecond),
      unit: 'records/s',
      note: `${kp.mbPerSecond} MB/s, avg ${kp.avgLatencyMs} ms, p99 ${kp.p99LatencyMs} ms`,
    });
    return c.out;
  } finally {
    process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
    await cleanup();
  }
}
