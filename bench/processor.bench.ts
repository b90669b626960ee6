import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { loadConfig } from '../src/config/load.js';
import { deletePipelineTopics, ensureTopics } from '../src/kafka/admin.js';
import { createKafka } from '../src/kafka/client.js';
import { semiSpaceNodeOptions } from '../src/runtime/node-options.js';
import { processorGroupId } from '../src/processor/processor.js';
import { sleep } from '../src/runtime/retry.js';
import { cpuSeconds, rssMiB } from './lib/proc-stats.js';
import { topicBytes } from './lib/topic-bytes.js';
import { avroEncoders, JSON_ENCODERS, preloadChanges } from './lib/change-preload.js';
import type { BenchResult } from './types.js';

/**
 * One stream processor instance (`engage process --mode stream`, its own process) draining
 * PRELOAD change events that are already in Kafka: events/s from the moment it consumes to the
 * moment its committed offsets cover everything, the steady rate (10 % → 90 %), its CPU (% of one
 * core, librdkafka threads included) and peak RSS, sampled from /proc. Own topics and group;
 * PROCESSOR_* variables in the environment pass through (e.g. PROCESSOR_CONCURRENCY=1);
 * BENCH_PROCESSOR_EVENTS sets the preload, BENCH_PROCESSOR_NODE_ARGS adds node flags (e.g. --cpu-prof).
 *
 * KAFKA_VALUE_FORMAT beside each other in one run: BENCH_PROCESSOR_FORMATS (default `json,avro`)
 * drains the same events written as Debezium JSON, then as Debezium Avro (the registry at
 * SCHEMA_REGISTRY_URL or the stack's), each with its own topics; BENCH_PROCESSOR_ROUNDS (default 1)
 * repeats the pair, every other round in the reverse order (interleaved: the machine's load drifts).
 * Each drain also reports the bytes per event of its input and output records, and each round the
 * Avro / JSON ratios.
 */

type Format = 'json' | 'avro';
const FORMATS = (process.env.BENCH_PROCESSOR_FORMATS ?? 'json,avro').split(',').filter(Boolean) as Format[];
const ROUNDS = Number(process.env.BENCH_PROCESSOR_ROUNDS ?? 1);

const PRELOAD = Number(process.env.BENCH_PROCESSOR_EVENTS ?? 300_000);
const CONTENTS = 500;
const PARTITIONS = 6;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TICKS = 100;

function benchEnv(id: string, format: Format): NodeJS.ProcessEnv {
  const pass = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('PROCESSOR_')));
  const registry = process.env.SCHEMA_REGISTRY_URL;
  return {
    KAFKA_VALUE_FORMAT: format,
    ...(registry ? { SCHEMA_REGISTRY_URL: registry } : {}),
    KAFKA_TOPIC_ENGAGEMENT_EVENTS: `${id}.events`,
    KAFKA_TOPIC_CONTENT: `${id}.content`,
    KAFKA_TOPIC_ENRICHED: `${id}.enriched`,
    KAFKA_TOPIC_DLQ: `${id}.dlq`,
    KAFKA_TOPIC_CDC_POSITION: `${id}.cdc-position`,
    KAFKA_TOPIC_PARTITIONS: String(PARTITIONS),
    KAFKA_CLIENT_ID: `engage-${id}`,
    REDIS_KEY_PREFIX: `${id}:`,
    LOG_LEVEL: 'info',
    ...pass,
  };
}

/** CPU ticks per thread (keyed "<tid> <name>"). */
function sampleThreads(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(
        `${tid} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`,
        Number(fields[11]) + Number(fields[12]),
      );
    } catch {
      // thread ended
    }
  }
  return out;
}

function threadGroup(key: string, pid: number): string {
  const [tid, name = ''] = key.split(' ', 2) as [string, string | undefined];
  if (Number(tid) === pid) return 'main';
  if (name.startsWith('rdk:')) return 'librdkafka';
  // Node names every other thread "node": V8's platform workers (parallel scavenge, concurrent
  // marking, compiler) and libuv's.
  return 'V8/libuv workers';
}

function threadDelta(a: Map<string, number>, b: Map<string, number>, pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of b) {
    const g = threadGroup(k, pid);
    out.set(g, (out.get(g) ?? 0) + v - (a.get(k) ?? 0));
  }
  return out;
}

/** Adds a `--trace-gc` line's main-thread pause (`Scavenge … MB, 1.2 / 0.0 ms …`) to its kind's total (ms). */
function addGcPause(line: string, byKind: Map<string, number>): void {
  const m = /: (Scavenge|Mark-Compact|Minor Mark-Compact|Mark-sweep)[^,]*,\s*([\d.]+) \/ [\d.]+ ms/.exec(line);
  if (m) byKind.set(m[1] as string, (byKind.get(m[1] as string) ?? 0) + Number(m[2]));
}

export async function run(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const tagged = FORMATS.length > 1 || ROUNDS > 1;
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? FORMATS : [...FORMATS].reverse();
    const byFormat = new Map<Format, BenchResult[]>();
    for (const format of order) {
      const results = await drain(format);
      byFormat.set(format, results);
      const tag = `[${format}${ROUNDS > 1 ? `, round ${round}` : ''}] `;
      out.push(...(tagged ? results.map((r) => ({ ...r, name: `${tag}${r.name}` })) : results));
    }
    const json = byFormat.get('json');
    const avro = byFormat.get('avro');
    if (json && avro) out.push(...ratios(json, avro, ROUNDS > 1 ? ` (round ${round})` : ''));
  }
  return out;
}

/** Avro / JSON of the figures that compare formats, from one round's pair of drains. */
function ratios(json: BenchResult[], avro: BenchResult[], suffix: string): BenchResult[] {
  const ratio = (name: string) => {
    const a = avro.find((r) => r.name === name)?.value;
    const j = json.find((r) => r.name === name)?.value;
    return a === undefined || j === undefined || j === 0 ? Number.NaN : Math.round((a / j) * 100) / 100;
  };
  return [
    'processor: CPU per event',
    'processor: input bytes per event (events topic)',
    'processor: output bytes per event (enriched topic)',
  ].map((name) => ({
    name: `Avro / JSON${suffix}, ${name.slice('processor: '.length)}`,
    value: ratio(name),
    unit: '×',
  }));
}

async function drain(format: Format): Promise<BenchResult[]> {
  const id = `bproc${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const env = benchEnv(id, format);
  const config = loadConfig({ ...env, STACK_DIR: process.env.STACK_DIR ?? '.stack' } as NodeJS.ProcessEnv, ROOT);
  await ensureTopics(config);
  const contentIds = Array.from({ length: CONTENTS }, () => randomUUID());
  const tLoad = Date.now();
  await preloadChanges(config, contentIds, PRELOAD, format === 'avro' ? await avroEncoders(config) : JSON_ENCODERS);
  const loadSeconds = (Date.now() - tLoad) / 1000;

  const nodeArgs = (process.env.BENCH_PROCESSOR_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [...nodeArgs, '--trace-gc', '--import', 'tsx', 'src/cli/main.ts', 'process', '--mode', 'stream'],
    {
      cwd: ROOT,
      // NODE_OPTIONS as the supervisor sets them for the processor (PROCESSOR_SEMI_SPACE_MB).
      env: {
        ...process.env,
        ...env,
        NODE_OPTIONS: semiSpaceNodeOptions(config.PROCESSOR_SEMI_SPACE_MB, process.env.NODE_OPTIONS) ?? '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const gcByKind = new Map<string, number>();
  let gcCounting = false;
  let gcTail = '';
  child.stdout?.on('data', (d: Buffer) => {
    const lines = (gcTail + d.toString()).split('\n');
    gcTail = lines.pop() ?? '';
    if (gcCounting) for (const line of lines) addGcPause(line, gcByKind);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const pid = child.pid as number;
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-bench-admin`).admin();
  await admin.connect();
  try {
    const deadline = Date.now() + 120_000;
    while (!stderr.includes('processor consuming')) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`processor did not start: ${stderr.slice(-2000)}`);
      await sleep(50);
    }
    const load0 = os.loadavg()[0] ?? 0;
    const t0 = Date.now();
    const cpu0 = cpuSeconds(pid);
    const threads0 = sampleThreads(pid);
    gcCounting = true;
    let peakRss = 0;
    let t10 = 0;
    let t90 = 0;
    let committed = 0;
    while (committed < PRELOAD) {
      if (Date.now() - t0 > 600_000) throw new Error(`drain incomplete after 600 s: ${committed}/${PRELOAD}`);
      await sleep(100);
      peakRss = Math.max(peakRss, rssMiB(pid));
      const offsets = await admin.fetchOffsets({
        groupId: processorGroupId(config),
        topics: [config.KAFKA_TOPIC_ENGAGEMENT_EVENTS],
      });
      committed = (offsets[0]?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
      if (!t10 && committed >= PRELOAD * 0.1) t10 = Date.now();
      if (!t90 && committed >= PRELOAD * 0.9) t90 = Date.now();
    }
    const t1 = Date.now();
    gcCounting = false;
    const cpuUsed = cpuSeconds(pid) - cpu0;
    const byThread = threadDelta(threads0, sampleThreads(pid), pid);
    const load1 = os.loadavg()[0] ?? 0;
    const seconds = (t1 - t0) / 1000;
    const dlq = await admin.fetchTopicOffsets(config.KAFKA_TOPIC_DLQ, {
      isolationLevel: KafkaJS.IsolationLevel.READ_COMMITTED,
    });
    const dlqCount = dlq.reduce((s, p) => s + Number(p.high), 0);
    const input = await topicBytes(config, config.KAFKA_TOPIC_ENGAGEMENT_EVENTS);
    const output = await topicBytes(config, config.KAFKA_TOPIC_ENRICHED);
    const note = `${PRELOAD.toLocaleString('en-US')} preloaded events, ${PARTITIONS} partitions, load average ${load0.toFixed(1)} → ${load1.toFixed(1)} on ${os.cpus().length} cores`;
    const usPerEvent = (ticks: number) => Math.round(((ticks / TICKS) * 1e6 * 10) / PRELOAD) / 10;
    const mainTicks = byThread.get('main') ?? 0;
    const gcMs = [...gcByKind.values()].reduce((a, b) => a + b, 0);
    return [
      {
        name: 'processor: one instance, drain throughput',
        value: Math.round(PRELOAD / seconds),
        unit: 'events/s',
        note,
      },
      {
        name: 'processor: steady throughput (10 % → 90 % of the drain)',
        value: Math.round((PRELOAD * 0.8) / Math.max(0.001, (t90 - t10) / 1000)),
        unit: 'events/s',
      },
      {
        name: 'processor: CPU during the drain',
        value: Math.round((cpuUsed / seconds) * 100),
        unit: '% of one core',
        note: 'process total, librdkafka threads included',
      },
      {
        name: 'processor: CPU per event',
        value: Math.round(((cpuUsed * 1e6) / PRELOAD) * 10) / 10,
        unit: 'µs',
        note: 'process total; the figure to optimise',
      },
      {
        name: 'processor: CPU per event by thread',
        value: usPerEvent(mainTicks),
        unit: 'µs main',
        note: [...byThread]
          .filter(([g]) => g !== 'main')
          .map(([g, t]) => `${g} ${usPerEvent(t)} µs`)
          .join(', '),
      },
      {
        name: 'processor: GC pauses (main thread)',
        value: Math.round((gcMs / (t1 - t0)) * 1000) / 10,
        unit: '% of the drain',
        note: `--trace-gc pauses in ${((t1 - t0) / 1000).toFixed(1)} s: ${[...gcByKind].map(([k, ms]) => `${k} ${Math.round(ms)} ms`).join(', ')}`,
      },
      { name: 'processor: peak RSS during the drain', value: Math.round(peakRss), unit: 'MB' },
      {
        name: 'processor: input bytes per event (events topic)',
        value: input.valueBytesPerRecord,
        unit: 'bytes',
        note: `record value; key ${input.keyBytesPerRecord} bytes; ${input.records.toLocaleString('en-US')} records read`,
      },
      {
        name: 'processor: output bytes per event (enriched topic)',
        value: output.valueBytesPerRecord,
        unit: 'bytes',
        note: `record value; key ${output.keyBytesPerRecord} bytes; ${output.records.toLocaleString('en-US')} records read`,
      },
      { name: 'processor: DLQ records (expected 0)', value: dlqCount, unit: 'records' },
      {
        name: 'processor bench: preload rate (idempotent producer)',
        value: Math.round(PRELOAD / loadSeconds),
        unit: 'events/s',
      },
    ];
  } finally {
    await admin.disconnect().catch(() => undefined);
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(20_000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
    // The preload is hundreds of MB: leave nothing of it on the shared broker.
    await deletePipelineTopics(config).catch(() => undefined);
  }
}
