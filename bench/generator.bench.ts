import pg from 'pg';
import { EventEngine } from '../src/generator/engine.js';
import { generateBatch, generateHistorical, type GenerateSummary } from '../src/generator/modes.js';
import { batchSlices, MINUTE_MS } from '../src/generator/timeline.js';
import { copyEvents, loadCatalogue } from '../src/generator/writer.js';
import { createTestEnv } from '../test/helpers/env.js';
import { readCpuSeconds } from './lib/proc-stats.js';
import type { BenchResult } from './types.js';

/**
 * The generator's insert rate into the real PostgreSQL (an isolated database with init.sql: the
 * foreign key, three indexes and logical WAL all apply): batch mode (COPY over the default two
 * connections, and over one for comparison) and historical mode, 200,000 rows each. Then the CPU
 * cost per row on each side of one COPY — the generator (this process) and the PostgreSQL backend
 * (from /proc, when the server is local) — which, unlike rows/s, does not depend on how busy the
 * machine is: 1e6 / (µs per row) is what one fully available core could sustain.
 */

const ROWS = 200_000;

function figure(name: string, s: GenerateSummary, note: string): BenchResult {
  return {
    name,
    value: Math.round(s.rowsPerSecond),
    unit: 'rows/s',
    note: `${s.rows.toLocaleString('en-US')} rows in ${s.seconds.toFixed(2)} s; ${note}`,
  };
}

async function cpuPerRow(databaseUrl: string): Promise<BenchResult[]> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const backend = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
    const engine = new EventEngine({ catalogue: await loadCatalogue(db), seed: 3 });
    const now = Date.now();
    const slices = batchSlices(now, 10 * MINUTE_MS, ROWS, 2000).map((slice, index) => ({ slice, index }));
    const server0 = readCpuSeconds(backend);
    const node0 = process.cpuUsage();
    await copyEvents(db, engine.chunks(slices, now));
    const node = process.cpuUsage(node0);
    const server1 = readCpuSeconds(backend);
    const out: BenchResult[] = [
      {
        name: 'generator CPU per row (generate + format + send)',
        value: (node.user + node.system) / ROWS,
        unit: 'µs',
        note: 'this process, one COPY of 200,000 rows',
      },
    ];
    if (server0 !== undefined && server1 !== undefined) {
      const us = ((server1 - server0) * 1e6) / ROWS;
      out.push({
        name: 'PostgreSQL backend CPU per row (COPY, FK, 3 indexes, WAL)',
        value: us,
        unit: 'µs',
        note: `=> one backend on a free core: ~${Math.round(1e6 / us).toLocaleString('en-US')} rows/s`,
      });
    }
    return out;
  } finally {
    await db.end();
  }
}

export async function run(): Promise<BenchResult[]> {
  const env = await createTestEnv();
  const db = new pg.Client({ connectionString: env.config.databaseUrl });
  await db.connect();
  const results: BenchResult[] = [];
  try {
    const batch = await generateBatch(env.config, { batchSize: ROWS, seed: 1 });
    results.push(figure('generate --mode batch (COPY, 2 connections)', batch, 'target >= 50,000'));
    await db.query('TRUNCATE engagement_events');
    const single = await generateBatch(env.config, { batchSize: ROWS, seed: 1, connections: 1 });
    results.push(figure('generate --mode batch (COPY, 1 connection)', single, 'for comparison'));
    await db.query('TRUNCATE engagement_events');
    const historical = await generateHistorical(env.config, { days: 10, eventsPerDay: ROWS / 10, seed: 2 });
    results.push(figure('generate --mode historical (10 days x 20,000)', historical, 'target >= 50,000'));
    await db.query('TRUNCATE engagement_events');
    results.push(...(await cpuPerRow(env.config.databaseUrl)));
  } finally {
    await db.end();
    await env.cleanup();
  }
  return results;
}
