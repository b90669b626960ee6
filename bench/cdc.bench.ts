import { randomBytes } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { startCdc, type CdcComponent } from '../src/cdc/cdc.js';
import { formatLsn, parseLsn } from '../src/cdc/lsn.js';
import { createLogger } from '../src/core/logger.js';
import type { ChangeEvent } from '../src/core/types.js';
import { createConsumer, createKafka } from '../src/kafka/client.js';
import { createTestEnv } from '../test/helpers/env.js';
import { recvlogicalDecode } from './lib/ceilings.js';
import { readCpuSeconds } from './lib/proc-stats.js';
import type { BenchResult } from './types.js';

/**
 * `engage cdc` against the real stack, in its own database/topics/slot:
 * 1. throughput: 300,000 rows committed in 300 transactions while the CDC is down, then the time
 *    from the CDC streaming until the last of them is committed to Kafka (PostgreSQL commit → Kafka
 *    commit, sustained over the backlog);
 * 2. the ceiling: `pg_recvlogical` decoding the same WAL through pgoutput from its own slot, created
 *    at the same point, to /dev/null;
 * 3. latency at 1,000 rows/s (100 transactions of 10 rows per second for 20 s): PostgreSQL commit
 *    time (source.ts_ms) to the record being readable by a read_committed consumer, p50/p99;
 * 4. one 100,000-row and one 1,000,000-row PostgreSQL transaction: their rate and the process's
 *    peak RSS meanwhile (bounded buffering: the Kafka transaction stays open, memory must not grow
 *    with the transaction's size). CDC_BENCH_BIG=0 leaves this part out (a shorter run).
 *
 * Beside each rate: the CPU it cost (this process — the CDC, librdkafka's threads included — from
 * process.cpuUsage(); the walsender decoding for it from /proc/<pid>/stat) per row, and the load
 * average, since wall-clock rates on a shared machine mean little alone.
 */

const BACKLOG_ROWS = 300_000;
const BACKLOG_TXNS = 300;
const LATENCY_SECONDS = 20;
const LATENCY_ROWS_PER_TXN = 10;
const LATENCY_TXNS_PER_S = 100;
const BIG_TXN_ROWS = 1_000_000;

/** `n` engagement events spread over the catalogue, tagged `device` (also bench/snapshot.bench.ts). */
export const INSERT = (n: number, device: string) => `
  WITH c AS (SELECT array_agg(id) AS a FROM content)
  INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload)
  SELECT c.a[1 + i % array_length(c.a, 1)], gen_random_uuid(), (ARRAY['play','pause','finish','click'])[1 + i % 4],
         now() - (i % 3600) * interval '1 second', (i * 37) % 600000, '${device}', jsonb_build_object('session', i % 997, 'app', '4.2.1')
    FROM c, generate_series(1, ${n}) AS i`;

async function currentLsn(db: pg.Client): Promise<bigint> {
  return parseLsn((await db.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l ?? '0/0');
}

async function until(what: string, check: () => boolean, timeoutMs: number, onTick?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    onTick?.();
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Follows the CPU of the walsender serving `appName` (PostgreSQL runs on this machine). */
function walsenderCpu(db: pg.Client, appName: string) {
  let pid: number | undefined;
  let first: number | undefined;
  let last: number | undefined;
  return {
    async sample(): Promise<void> {
      if (pid === undefined) {
        const r = await db.query<{ pid: number }>(
          'SELECT pid FROM pg_stat_replication WHERE application_name LIKE $1',
          [appName],
        );
        pid = r.rows[0]?.pid;
      }
      const v = pid === undefined ? undefined : readCpuSeconds(pid);
      if (v !== undefined) {
        first ??= v;
        last = v;
      }
    },
    seconds: () => (first === undefined || last === undefined ? NaN : last - first),
  };
}

function load(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
}

function cpuMicros(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return d.user + d.system;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export async function run(): Promise<BenchResult[]> {
  const env = await createTestEnv({ CDC_SNAPSHOT_MODE: 'never', LOG_LEVEL: 'warn' });
  const { config } = env;
  const log = createLogger('warn', 'cdc-bench');
  const db = new pg.Client({ connectionString: config.databaseUrl });
  await db.connect();
  const recvSlot = `bench_recv_${randomBytes(3).toString('hex')}`;
  let cdc: CdcComponent | undefined;
  const results: BenchResult[] = [];
  try {
    // The CDC's slot and the pg_recvlogical slot, both before the backlog.
    cdc = await startCdc(config, log);
    await cdc.stop();
    cdc = undefined;
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [recvSlot]);
    for (let t = 0; t < BACKLOG_TXNS; t++) await db.query(INSERT(BACKLOG_ROWS / BACKLOG_TXNS, 'backlog'));
    const backlogEnd = await currentLsn(db);

    // 2. Ceiling: PostgreSQL decoding the same WAL, nothing else.
    const r0 = Date.now();
    const recvLoad = load();
    const recvWal = walsenderCpu(db, 'pg_recvlogical');
    let recvDone = false;
    const recvSampler = (async () => {
      while (!recvDone) {
        await recvWal.sample().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await recvlogicalDecode(config, recvSlot, formatLsn(backlogEnd));
    const recvMs = Date.now() - r0;
    recvDone = true;
    await recvSampler;
    await db.query('SELECT pg_drop_replication_slot($1)', [recvSlot]);

    // 1. Throughput over the backlog.
    const s0 = Date.now();
    cdc = await startCdc(config, log);
    const c = cdc;
    const streamingAt = Date.now();
    const cpu0 = process.cpuUsage();
    const cdcLoad = load();
    const cdcWal = walsenderCpu(db, 'engage-cdc-stream:%');
    let ticks = 0;
    await until(
      'backlog committed to Kafka',
      () => {
        const l = c.status().last_lsn;
        return l !== null && parseLsn(l) >= backlogEnd;
      },
      600_000,
      () => {
        if (ticks++ % 5 === 0) void cdcWal.sample().catch(() => undefined);
      },
    );
    const cdcMs = Date.now() - streamingAt;
    const cdcCpu = cpuMicros(cpu0);
    await cdcWal.sample().catch(() => undefined);
    const cdcRate = BACKLOG_ROWS / (cdcMs / 1000);
    const recvRate = BACKLOG_ROWS / (recvMs / 1000);
    results.push(
      {
        name: 'cdc throughput, 300k-row backlog (PG commit → Kafka commit)',
        value: Math.round(cdcRate),
        unit: 'rows/s',
        note: `${(cdcMs / 1000).toFixed(1)} s; start-up ${((streamingAt - s0) / 1000).toFixed(1)} s not counted; load ${cdcLoad} → ${load()}`,
      },
      {
        name: 'cdc process CPU per row over the backlog (user+sys)',
        value: Math.round((cdcCpu / BACKLOG_ROWS) * 10) / 10,
        unit: 'µs/row',
        note: `${(cdcCpu / 1e6).toFixed(1)} s CPU = ${Math.round(cdcCpu / 1e4 / (cdcMs / 1000))} % of one core`,
      },
      {
        name: 'walsender CPU per row, serving the cdc',
        value: Math.round(((cdcWal.seconds() * 1e6) / BACKLOG_ROWS) * 10) / 10,
        unit: 'µs/row',
      },
      {
        name: 'ceiling: pg_recvlogical decoding the same WAL (pgoutput)',
        value: Math.round(recvRate),
        unit: 'rows/s',
        note: `${(recvMs / 1000).toFixed(1)} s to /dev/null; load ${recvLoad}`,
      },
      {
        name: 'walsender CPU per row, serving pg_recvlogical',
        value: Math.round(((recvWal.seconds() * 1e6) / BACKLOG_ROWS) * 10) / 10,
        unit: 'µs/row',
      },
      {
        name: 'cdc throughput as a share of the decoding ceiling',
        value: Math.round((cdcRate / recvRate) * 1000) / 10,
        unit: '%',
      },
    );

    // 3. Latency at 1,000 rows/s, seen by a read_committed consumer.
    const consumer = createConsumer(createKafka(config, `${config.KAFKA_CLIENT_ID}-bench`), {
      groupId: `bench-${randomBytes(3).toString('hex')}`,
      fromBeginning: false,
      readCommitted: true,
    });
    const latencies: number[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [config.KAFKA_TOPIC_ENGAGEMENT_EVENTS] });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const now = Date.now();
        for (const m of batch.messages) {
          if (!m.value) continue;
          const ev = JSON.parse(m.value.toString()) as ChangeEvent;
          if (ev.after?.device === 'latency') latencies.push(now - ev.source.ts_ms);
        }
      },
    });
    await until('consumer assigned', () => consumer.assignment().length === config.KAFKA_TOPIC_PARTITIONS, 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    // A pool of 4 sessions, so a slow INSERT never delays the next one's schedule.
    const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 4 });
    const l0 = Date.now();
    const latencyLoad = load();
    const total = LATENCY_SECONDS * LATENCY_TXNS_PER_S;
    const inserts: Array<Promise<unknown>> = [];
    for (let i = 0; i < total; i++) {
      const due = l0 + (i * 1000) / LATENCY_TXNS_PER_S;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      inserts.push(pool.query(INSERT(LATENCY_ROWS_PER_TXN, 'latency')));
    }
    await Promise.all(inserts);
    await pool.end();
    const achieved = (total * LATENCY_ROWS_PER_TXN) / ((Date.now() - l0) / 1000);
    await until('latency rows consumed', () => latencies.length >= total * LATENCY_ROWS_PER_TXN, 60_000);
    await consumer.disconnect();
    latencies.sort((a, b) => a - b);
    results.push(
      {
        name: 'latency p50 at 1,000 rows/s (PG commit → readable read_committed)',
        value: percentile(latencies, 50),
        unit: 'ms',
        note: `${latencies.length} rows, offered ${Math.round(achieved)} rows/s, CDC_COMMIT_INTERVAL_MS=${config.CDC_COMMIT_INTERVAL_MS}; load ${latencyLoad} → ${load()}`,
      },
      {
        name: 'latency p99 at 1,000 rows/s',
        value: percentile(latencies, 99),
        unit: 'ms',
        note: `max ${latencies[latencies.length - 1]} ms`,
      },
    );

    // 4. Single big PostgreSQL transactions: 100,000 then 1,000,000 rows; the process's peak RSS
    //    during each (bounded buffering: the second must not need ten times the first).
    for (const rows of process.env.CDC_BENCH_BIG === '0' ? [] : [BIG_TXN_ROWS / 10, BIG_TXN_ROWS]) {
      const rowsBefore = c.status().rows;
      const rssBefore = process.memoryUsage().rss;
      let peakRss = rssBefore;
      const b0 = Date.now();
      await db.query(INSERT(rows, 'big'));
      const committedAt = Date.now();
      await until(
        `${rows}-row transaction in Kafka`,
        () => c.status().rows >= rowsBefore + rows,
        900_000,
        () => {
          peakRss = Math.max(peakRss, process.memoryUsage().rss);
        },
      );
      const bigMs = Date.now() - committedAt;
      const label = rows.toLocaleString('en-US');
      results.push(
        {
          name: `one ${label}-row PG transaction: PG commit → Kafka commit`,
          value: Math.round(rows / (bigMs / 1000)),
          unit: 'rows/s',
          note: `${(bigMs / 1000).toFixed(1)} s after a ${((committedAt - b0) / 1000).toFixed(1)} s INSERT`,
        },
        {
          name: `peak RSS of the process during the ${label}-row transaction`,
          value: Math.round(peakRss / 2 ** 20),
          unit: 'MiB',
          note: `${Math.round(rssBefore / 2 ** 20)} MiB before it`,
        },
      );
    }
    return results;
  } finally {
    await cdc?.stop().catch(() => undefined);
    await db
      .query(
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active',
        [recvSlot],
      )
      .catch(() => undefined);
    await db.end();
    await env.cleanup();
  }
}
