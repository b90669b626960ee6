import os from 'node:os';
import pg from 'pg';
import { AvroEncoder } from '../src/cdc/avro/avro-encoder.js';
import type { TableLayout } from '../src/cdc/avro/schema.js';
import { startCdc, type CdcComponent } from '../src/cdc/cdc.js';
import { CDC_VERSION, envelopeJson, sourcePrefix } from '../src/cdc/envelope.js';
import { parseLsn } from '../src/cdc/lsn.js';
import { RowJson } from '../src/cdc/row-json.js';
import type { Config } from '../src/config/load.js';
import { createLogger } from '../src/core/logger.js';
import { SchemaRegistry } from '../src/kafka/schema-registry/registry.js';
import { avroConfig, dropAvroConfig, EVENTS } from '../test/cdc/avro-helpers.js';
import { createTestEnv } from '../test/helpers/env.js';
import { INSERT } from './cdc.bench.js';
import { topicBytes } from './lib/topic-bytes.js';
import type { BenchResult } from './types.js';

/**
 * The CDC's wire formats side by side, in one run on the real stack (the registry included):
 * KAFKA_VALUE_FORMAT=json and =avro each stream the same 200,000-row backlog (200 transactions,
 * committed while every CDC is stopped), each drain from a slot and into topics of its own created
 * before it, one after the other in rounds of alternating order (json, avro, avro, json …;
 * BENCH_CDC_FORMAT_ROUNDS, default 2). Per format, the mean of its drains: the CDC process's CPU per row (user+sys, librdkafka's threads
 * included), the rate, and the bytes per event on the wire (key + value as a consumer receives
 * them, before Kafka's batching and compression). Plus, without I/O, the Avro encoding's own cost
 * per event (JSON text → wire bytes: src/cdc/avro/avro-encoder.ts, its text encoder where the text has the
 * renderer's shape).
 */

const ROWS = 200_000;
const TXNS = 200;
const ENCODE_N = 100_000;

function load(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Streams the backlog with `config`'s format: CPU µs per row, rows/s. */
async function drain(config: Config, end: bigint): Promise<{ cpuPerRow: number; rate: number; note: string }> {
  const log = createLogger('warn', 'cdc-format-bench');
  const before = load();
  const cdc: CdcComponent = await startCdc(config, log);
  try {
    const t0 = Date.now();
    const cpu0 = process.cpuUsage();
    await until(
      `${config.KAFKA_VALUE_FORMAT} backlog in Kafka`,
      () => {
        const l = cdc.status().last_lsn;
        return l !== null && parseLsn(l) >= end;
      },
      600_000,
    );
    const ms = Date.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const micros = cpu.user + cpu.system;
    return {
      cpuPerRow: Math.round((micros / ROWS) * 10) / 10,
      rate: Math.round(ROWS / (ms / 1000)),
      note: `${(ms / 1000).toFixed(1)} s, ${Math.round(micros / 1e4 / (ms / 1000))} % of one core; load ${before} → ${load()}`,
    };
  } finally {
    await cdc.stop();
  }
}

/** µs of CPU per event for AvroEncoder.encode of an engagement_events create (mock registry). */
async function encodeCost(): Promise<number> {
  const layout: TableLayout = {
    ...EVENTS,
    columns: EVENTS.columns.map((c) => (c.name === 'user_id' ? { ...c, typeOid: 25 } : c)),
  };
  const registry = await SchemaRegistry.connect({ url: 'mock://cdc-format-bench', compatibility: 'BACKWARD' });
  const encoder = new AvroEncoder(registry, 'engage', createLogger('warn', 'cdc-format-bench'));
  await encoder.streamLayout('events', layout);
  const json = new RowJson(layout.columns, layout.primaryKey);
  const prefix = sourcePrefix({
    version: CDC_VERSION,
    connector: 'postgresql',
    name: 'engage',
    ts_ms: Date.now(),
    snapshot: 'false',
    db: 'engagement_db',
    schema: 'public',
    table: 'engagement_events',
    txId: 7811,
  });
  const records = Array.from({ length: 1000 }, (_, i) => {
    const row = [
      String(1_000_000 + i),
      '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d',
      'p1.k1.q8V7X2yJ0nG2b6o9YH1v3c5kz',
      'play',
      '2026-11-27 03:10:11.123456+00',
      String((i * 37) % 600_000),
      'ios',
      `{"app": "4.2.1", "session": ${i % 997}}`,
    ];
    const at = { prefix, lsn: 24153560 + i, sequence: `["24153488","${24153560 + i}"]` };
    return [json.key(row), envelopeJson('c', 'null', json.row(row), at, Date.now())] as const;
  });
  for (let i = 0; i < 20_000; i++) encoder.encode('events', ...(records[i % 1000] as readonly [string, string]));
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < ENCODE_N; i++) encoder.encode('events', ...(records[i % 1000] as readonly [string, string]));
  const cpu = process.cpuUsage(cpu0);
  return Math.round(((cpu.user + cpu.system) / ENCODE_N) * 100) / 100;
}

export async function run(): Promise<BenchResult[]> {
  const rounds = Number(process.env.BENCH_CDC_FORMAT_ROUNDS ?? 2);
  const env = await createTestEnv({ CDC_SNAPSHOT_MODE: 'never', LOG_LEVEL: 'warn' });
  // Each drain reads the backlog from a slot and into topics of its own: rounds alternate the order.
  const order = Array.from({ length: rounds }, (_, r) =>
    r % 2 === 0 ? (['json', 'avro'] as const) : (['avro', 'json'] as const),
  ).flat();
  const configs = order.map((format, i) =>
    avroConfig(env, `${format}${i}`, { KAFKA_VALUE_FORMAT: format, CDC_SNAPSHOT_MODE: 'never' }),
  );
  const db = new pg.Client({ connectionString: env.config.databaseUrl });
  await db.connect();
  try {
    // Every slot (and the Avro schemas, at the first Relation) before the backlog.
    for (const config of configs) await (await startCdc(config, createLogger('warn', 'cdc-format-bench'))).stop();
    for (let t = 0; t < TXNS; t++) await db.query(INSERT(ROWS / TXNS, 'backlog'));
    const end = parseLsn((await db.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l ?? '0/0');
    const runs: Array<{ format: string; cpuPerRow: number; rate: number; note: string; bytes: number }> = [];
    for (const config of configs) {
      const r = await drain(config, end);
      const b = await topicBytes(config, config.KAFKA_TOPIC_ENGAGEMENT_EVENTS);
      runs.push({ format: config.KAFKA_VALUE_FORMAT, ...r, bytes: b.valueBytesPerRecord + b.keyBytesPerRecord });
    }
    const of = (format: string) => runs.filter((r) => r.format === format);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const round1 = (x: number) => Math.round(x * 10) / 10;
    const figures = (format: 'json' | 'avro'): BenchResult[] => [
      {
        name: `cdc CPU per row, KAFKA_VALUE_FORMAT=${format} (${ROWS / 1000}k-row backlog, mean of rounds)`,
        value: round1(mean(of(format).map((r) => r.cpuPerRow))),
        unit: 'µs/row',
        note: of(format)
          .map((r) => `${r.cpuPerRow} µs, ${r.rate.toLocaleString('en-US')} rows/s (${r.note})`)
          .join(' | '),
      },
      {
        name: `bytes per event on the wire (key + value), ${format}`,
        value: round1(mean(of(format).map((r) => r.bytes))),
        unit: 'B',
      },
    ];
    const ratio = (f: (r: (typeof runs)[number]) => number) =>
      Math.round((mean(of('avro').map(f)) / mean(of('json').map(f))) * 100) / 100;
    const encode = await encodeCost();
    return [
      ...figures('json'),
      ...figures('avro'),
      {
        name: 'cdc CPU per row, avro / json',
        value: ratio((r) => r.cpuPerRow),
        unit: '×',
        note: `order ${order.join(', ')}`,
      },
      {
        name: 'bytes per event, avro / json',
        value: ratio((r) => r.bytes),
        unit: '×',
        note: 'Avro: 5-byte wire-format header in each of key and value',
      },
      {
        name: 'avro encoding alone, per event (JSON text → wire bytes, no I/O)',
        value: encode,
        unit: 'µs/event',
        note: `${ENCODE_N.toLocaleString('en-US')} engagement_events creates, mock registry`,
      },
    ];
  } finally {
    await db.end();
    for (const config of configs) await dropAvroConfig(config).catch(() => undefined);
    await env.cleanup();
  }
}
