import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { createLogger } from '../src/core/logger.js';
import { runBackfill } from '../src/backfill/run.js';
import { generateHistorical } from '../src/generator/modes.js';
import { startSinkRunner } from '../src/runtime/sink-runner.js';
import { warehouseSinkFactory } from '../src/sinks/warehouse/index.js';
import { createTestEnv } from '../test/helpers/env.js';
import { childPids, cpuSeconds, rssMiB } from './lib/proc-stats.js';
import type { BenchResult } from './types.js';

/**
 * The backfill's rate into DuckDB, on an isolated database holding 5 days × 200,000 events
 * (1,000,000, so that start-up is not the figure; BACKFILL_BENCH_PER_DAY changes it), in two timed
 * phases run one after the other (so each phase's CPU is its own):
 *   A. the backfill: PostgreSQL (keyset pages) → enrich → the enriched topic, confirmed by the broker;
 *   B. `engage sink warehouse` (the real sink runner, in this process) from that topic until the
 *      DuckDB file holds every event of the range.
 * "Into DuckDB" is the range's events over A + B. Then
 *   C0. `--direct warehouse --no-bulk-import`: PostgreSQL rows → enrich (JS) → DuckDB in this
 *      process, into a fresh file, in the direct target's pages (one DuckDB row group);
 *   C. `--direct warehouse` as a user gets it: pages as COPY writes them, imported and enriched
 *      by DuckDB (docs/warehouse.md "Bulk import"), into another fresh file; under PII_FIELDS'
 *      default (user_id) the COPY computes the pseudonyms (C0 pseudonymises in JS);
 *   C1. C with PII_FIELDS=none (the raw user ids: what the pseudonyms cost PostgreSQL);
 *      C0, C and C1 run in turn BACKFILL_BENCH_PAIRS times (default 1), each into a fresh file,
 *      their medians reported;
 *   D. the same again over the full file (every event a duplicate: what a re-run costs);
 *   E. the command a user runs for C, `engage process --mode backfill --direct warehouse`, as a
 *      child process into another fresh file: the rate it prints, and its wall time from spawn to
 *      exit (Node's start, set-up and the closing checkpoint included), CPU and peak RSS (/proc,
 *      sampled every 100 ms, the `engage` wrapper and the CLI together).
 * CPU is this process's (user + system, all threads, DuckDB's included) per event.
 * BACKFILL_BENCH_BATCH sets the sink's BATCH_SIZE.
 */

const DAYS = 5;
const PER_DAY = Number(process.env.BACKFILL_BENCH_PER_DAY ?? 200_000);
const SINK_BATCH = process.env.BACKFILL_BENCH_BATCH ?? '50000';
const PAIRS = Math.max(1, Number(process.env.BACKFILL_BENCH_PAIRS ?? 1));

/** The run whose rate is the median (the upper one of an even count). */
function median<T extends { r: { rate: number } }>(runs: T[]): T {
  const sorted = [...runs].sort((x, y) => x.r.rate - y.r.rate);
  return sorted[Math.floor(sorted.length / 2)] as T;
}

function cpuMicros(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

async function duckCount(file: string): Promise<number> {
  const instance = await DuckDBInstance.fromCache(file);
  const conn = await instance.connect();
  try {
    const r = await conn.runAndReadAll('SELECT count(*) FROM engagement_events_enriched');
    return Number(r.getRowsJS()[0]?.[0] ?? 0);
  } catch {
    return 0; // the sink has not created the table yet
  } finally {
    conn.closeSync();
  }
}

export async function run(): Promise<BenchResult[]> {
  const env = await createTestEnv({ BATCH_SIZE: SINK_BATCH, WAREHOUSE_FLUSH_SECONDS: '1' });
  try {
    const nowMs = Date.parse('2025-08-06T12:00:00Z');
    await generateHistorical(env.config, { days: DAYS, eventsPerDay: PER_DAY, seed: 5, nowMs });
    const log = createLogger('silent');
    const load0 = os.loadavg()[0]?.toFixed(1);
    const piiNote =
      env.config.piiFields.length > 0
        ? `${env.config.piiFields.map((f) => `${f.table}.${f.column}`).join(',')} (pseudonyms computed by PostgreSQL)`
        : 'none';

    const cpuA = cpuMicros();
    const a = await runBackfill(
      env.config,
      { startDate: '2025-08-01', endDate: '2025-08-06', pageSize: 20_000, progress: false },
      log,
    );
    const usA = (cpuMicros() - cpuA) / Math.max(a.read, 1);

    const cpuB = cpuMicros();
    const t0 = performance.now();
    const sink = await startSinkRunner(env.config, warehouseSinkFactory, log);
    let stored = 0;
    try {
      while ((stored = await duckCount(env.config.DUCKDB_PATH)) < a.delivered)
        await new Promise((r) => setTimeout(r, 100));
    } finally {
      await sink.stop();
    }
    const secondsB = (performance.now() - t0) / 1000;
    const usB = (cpuMicros() - cpuB) / Math.max(stored, 1);
    const load1 = os.loadavg()[0]?.toFixed(1);

    const directConfig = {
      ...env.config,
      DUCKDB_PATH: path.join(path.dirname(env.config.DUCKDB_PATH), 'direct.duckdb'),
    };
    // The rate runs to the last page's commit (durable in DuckDB's WAL); `withClose` adds closing
    // the sink, i.e. the CHECKPOINT that moves the WAL into the file.
    const direct = async (config = directConfig, bulk = true) => {
      const cpu = cpuMicros();
      const t = performance.now();
      // The page size a user gets: the target's (one DuckDB row group).
      const r = await runBackfill(
        config,
        { startDate: '2025-08-01', endDate: '2025-08-06', progress: false, restart: true, direct: ['warehouse'], bulk },
        log,
      );
      const withClose = r.read / ((performance.now() - t) / 1000);
      return { r, withClose, us: (cpuMicros() - cpu) / Math.max(r.read, 1) };
    };
    const fileConfig = (name: string, extra: Partial<typeof env.config> = {}) => ({
      ...env.config,
      ...extra,
      DUCKDB_PATH: path.join(path.dirname(env.config.DUCKDB_PATH), name),
    });
    // C0, C and C1 in turn, PAIRS times, each into a fresh file; C's last file is D's.
    const c0s: Array<Awaited<ReturnType<typeof direct>>> = [];
    const cs: typeof c0s = [];
    const c1s: typeof c0s = [];
    const loads: string[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const last = i === PAIRS - 1;
      c0s.push(await direct(fileConfig(`rows-${i}.duckdb`), false));
      cs.push(await direct(last ? directConfig : fileConfig(`direct-${i}.duckdb`)));
      c1s.push(await direct(fileConfig(`nopii-${i}.duckdb`, { piiFields: [] })));
      loads.push(os.loadavg()[0]?.toFixed(1) ?? '?');
    }
    const c0 = median(c0s);
    const c = median(cs);
    const c1 = median(c1s);
    const each = (runs: typeof c0s) => runs.map((x) => Math.round(x.r.rate).toLocaleString('en-US')).join(', ');
    const cStored = await duckCount(directConfig.DUCKDB_PATH);
    const d = await direct();
    const dStored = await duckCount(directConfig.DUCKDB_PATH);
    const load2 = os.loadavg()[0]?.toFixed(1);
    const e = await commandRun(env.env, path.join(path.dirname(env.config.DUCKDB_PATH), 'command.duckdb'));
    return [
      {
        name: 'A. backfill PostgreSQL → enriched topic',
        value: Math.round(a.rate),
        unit: 'events/s',
        note: `${a.read.toLocaleString('en-US')} rows in ${a.seconds.toFixed(1)} s, pages of 20,000; ${usA.toFixed(1)} µs CPU/event; load ${load0}`,
      },
      {
        name: 'B. warehouse sink, topic → DuckDB',
        value: Math.round(stored / secondsB),
        unit: 'events/s',
        note: `${stored.toLocaleString('en-US')} rows in ${secondsB.toFixed(1)} s, BATCH_SIZE ${SINK_BATCH}; ${usB.toFixed(1)} µs CPU/event (consumer + sink)`,
      },
      {
        name: 'backfill into DuckDB (A + B)',
        value: Math.round(stored / (a.seconds + secondsB)),
        unit: 'events/s',
        note: `${(usA + usB).toFixed(1)} µs CPU/event in all; load ${load0} → ${load1}`,
      },
      {
        name: 'C0. the same row by row (--no-bulk-import), fresh file',
        value: Math.round(c0.r.rate),
        unit: 'events/s',
        note: `${c0.r.read.toLocaleString('en-US')} rows in ${c0.r.seconds.toFixed(2)} s; ${Math.round(c0.withClose).toLocaleString('en-US')}/s with the closing checkpoint; ${c0.us.toFixed(1)} µs CPU/event${PAIRS > 1 ? `; median of ${each(c0s)}` : ''}`,
      },
      {
        name: 'C. backfill --direct warehouse, fresh file',
        value: Math.round(c.r.rate),
        unit: 'events/s',
        note: `${c.r.read.toLocaleString('en-US')} rows in ${c.r.seconds.toFixed(2)} s, ${cStored.toLocaleString('en-US')} stored; ${Math.round(c.withClose).toLocaleString('en-US')}/s with the closing checkpoint; ${c.us.toFixed(1)} µs CPU/event${PAIRS > 1 ? `; median of ${each(cs)}` : ''}; PII_FIELDS ${piiNote}`,
      },
      {
        name: 'C1. the same with PII_FIELDS=none, fresh file',
        value: Math.round(c1.r.rate),
        unit: 'events/s',
        note: `${c1.r.read.toLocaleString('en-US')} rows in ${c1.r.seconds.toFixed(2)} s; ${c1.us.toFixed(1)} µs CPU/event${PAIRS > 1 ? `; median of ${each(c1s)}` : ''}; load after each C0, C, C1: ${loads.join(', ')}`,
      },
      {
        name: 'D. the same again (all duplicates)',
        value: Math.round(d.r.rate),
        unit: 'events/s',
        note: `${d.r.read.toLocaleString('en-US')} rows in ${d.r.seconds.toFixed(2)} s, ${dStored.toLocaleString('en-US')} stored; ${Math.round(d.withClose).toLocaleString('en-US')}/s with the closing checkpoint; ${d.us.toFixed(1)} µs CPU/event; load ${load1} → ${load2}`,
      },
      {
        name: 'E. `engage process … --direct warehouse`, fresh file',
        value: Math.round(e.printed),
        unit: 'events/s',
        note: `the rate it printed; ${e.read.toLocaleString('en-US')} rows, ${e.wall.toFixed(2)} s from spawn to exit = ${Math.round(e.read / e.wall).toLocaleString('en-US')}/s for the whole command; ${e.cpuUs.toFixed(1)} µs CPU/event; peak RSS ${Math.round(e.peakRssMiB)} MiB`,
      },
    ];
  } finally {
    await env.cleanup();
  }
}

/** Phase E: the CLI as a user runs it, with the test env's variables, timed from outside. */
async function commandRun(
  vars: NodeJS.ProcessEnv,
  file: string,
): Promise<{ printed: number; read: number; wall: number; cpuUs: number; peakRssMiB: number }> {
  const args = [
    'bin/engage.mjs',
    'process',
    '--mode',
    'backfill',
    '--start-date',
    '2025-08-01',
    '--end-date',
    '2025-08-06',
    '--direct',
    'warehouse',
    '--restart',
    '--no-progress',
  ];
  const t0 = performance.now();
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...vars, DUCKDB_PATH: file },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  let cpu = 0;
  let peak = 0;
  const sample = () => {
    // One /proc scan per sample: the wrapper and the CLI it started.
    const pids = child.pid ? [child.pid, ...childPids(child.pid)] : [];
    cpu = Math.max(
      cpu,
      pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0),
    );
    peak = Math.max(
      peak,
      pids.reduce((sum, pid) => sum + rssMiB(pid), 0),
    );
  };
  const timer = setInterval(sample, 100);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(timer);
  const wall = (performance.now() - t0) / 1000;
  const m = /read (\d+), delivered \d+, dlq \d+ in [\d.]+ s \((\d+) events\/s\)/.exec(out);
  if (code !== 0 || !m) throw new Error(`engage process exited ${code}: ${out}`);
  const read = Number(m[1]);
  return { printed: Number(m[2]), read, wall, cpuUs: (cpu * 1e6) / read, peakRssMiB: peak };
}

// `npx tsx bench/backfill.bench.ts` runs it alone.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const r of await run())
    console.log(`${r.name.padEnd(44)} ${r.value.toLocaleString('en-US').padStart(10)} ${r.unit}  (${r.note ?? ''})`);
}
