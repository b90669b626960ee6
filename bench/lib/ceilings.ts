import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Config } from '../../src/config/load.js';
import { createTopics } from '../../src/kafka/admin.js';
import { generateBatch } from '../../src/generator/modes.js';
import { kafkaClasspath } from '../../src/stack/kafka.js';

/**
 * The ceilings the pipeline is compared with, measured on the same stack in the same run:
 * PostgreSQL decoding its own WAL with `pg_recvlogical` (pgoutput, to /dev/null), and Kafka's own
 * producer performance tool (`org.apache.kafka.tools.ProducerPerformance`, from the jars the
 * stack runs the broker with). Run them while the pipeline is stopped, so nothing competes.
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('error', reject);
    p.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${err.slice(-500)}`)),
    );
  });
}

/** `pg_recvlogical` decoding `slot` through pgoutput up to `endLsn` (text form), to /dev/null; resolves when it has. */
export async function recvlogicalDecode(config: Config, slot: string, endLsn: string): Promise<void> {
  await run('pg_recvlogical', [
    '-d',
    config.databaseUrl,
    '-S',
    slot,
    '--start',
    '-n',
    '-E',
    endLsn,
    '-o',
    'proto_version=1',
    '-o',
    `publication_names=${config.CDC_PUBLICATION_NAME}`,
    '-f',
    '/dev/null',
  ]);
}

/** Rows/s at which PostgreSQL decodes `rows` generator-made rows (committed in one COPY) to /dev/null. */
export async function recvlogicalCeiling(
  config: Config,
  rows: number,
): Promise<{ rowsPerSecond: number; seconds: number }> {
  const db = new pg.Client({ connectionString: config.databaseUrl });
  await db.connect();
  const slot = `bench_ceiling_${process.pid}`;
  try {
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    await generateBatch(config, { batchSize: rows, seed: 77, windowMinutes: 60 });
    const end = (await db.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l ?? '0/0';
    const t0 = Date.now();
    await recvlogicalDecode(config, slot, end);
    const seconds = (Date.now() - t0) / 1000;
    return { rowsPerSecond: rows / seconds, seconds };
  } finally {
    await db.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
    await db.end();
  }
}

export interface ProducerPerf {
  recordsPerSecond: number;
  mbPerSecond: number;
  avgLatencyMs: number;
  p99LatencyMs: number;
}

/**
 * Kafka's producer performance tool: `records` records of `recordSize` bytes, acks=all, idempotent,
 * linger 5 ms, into a fresh 6-partition topic. Its payload is random bytes, so it is not compressed.
 */
export async function kafkaProducerCeiling(config: Config, records: number, recordSize: number): Promise<ProducerPerf> {
  const topic = `bench-producer-perf-${process.pid}`;
  await createTopics(config, `${config.KAFKA_CLIENT_ID}-bench`, [
    { topic, numPartitions: config.KAFKA_TOPIC_PARTITIONS, compacted: false },
  ]);
  const classpath = await kafkaClasspath(config.STACK_DIR, repoRoot);
  const out = await run('java', [
    '-Xmx512m',
    '-cp',
    classpath,
    'org.apache.kafka.tools.ProducerPerformance',
    '--topic',
    topic,
    '--num-records',
    String(records),
    '--record-size',
    String(recordSize),
    '--throughput',
    '-1',
    '--producer-props',
    `bootstrap.servers=${config.kafkaBrokers.join(',')}`,
    'acks=all',
    'enable.idempotence=true',
    'linger.ms=5',
    'batch.size=262144',
  ]);
  // The summary line: "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, p50 ms 50th, p95 ms 95th, p99 ms 99th, ..."
  const last =
    out
      .trim()
      .split('\n')
      .filter((l) => l.includes('records/sec'))
      .pop() ?? '';
  const num = (re: RegExp) => Number(re.exec(last)?.[1] ?? Number.NaN);
  return {
    recordsPerSecond: num(/([\d.]+) records\/sec/),
    mbPerSecond: num(/\(([\d.]+) MB\/sec\)/),
    avgLatencyMs: num(/([\d.]+) ms avg latency/),
    p99LatencyMs: num(/(\d+) ms 99th/),
  };
}
