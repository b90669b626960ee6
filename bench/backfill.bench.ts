import { createLogger } from '../src/core/logger.js';
import { runBackfill } from '../src/backfill/run.js';
import { generateHistorical } from '../src/generator/modes.js';
import { createTestEnv } from '../test/helpers/env.js';
import type { BenchResult } from './types.js';

/**
 * The backfill's rate: PostgreSQL (keyset pages) → enrich → the enriched topic, confirmed by the
 * broker, on an isolated database holding 5 days × 40,000 events. The sinks then ingest from the
 * topic at their own rates (see warehouse-sink and redis-sink); this measures the backfill itself.
 */
export async function run(): Promise<BenchResult[]> {
  const env = await createTestEnv();
  try {
    const nowMs = Date.parse('2025-08-06T12:00:00Z');
    await generateHistorical(env.config, { days: 5, eventsPerDay: 40_000, seed: 5, nowMs });
    const log = createLogger('silent');
    const cpu0 = process.cpuUsage();
    const r = await runBackfill(env.config, { startDate: '2025-08-01', endDate: '2025-08-06', pageSize: 20_000, progress: false }, log);
    const cpu = process.cpuUsage(cpu0);
    return [
      { name: 'backfill PostgreSQL → enriched topic', value: Math.round(r.rate), unit: 'events/s', note: `${r.read.toLocaleString('en-US')} rows in ${r.seconds.toFixed(1)} s, pages of 20,000` },
      { name: 'backfill CPU per event (this process)', value: (cpu.user + cpu.system) / Math.max(r.read, 1), unit: 'µs' },
    ];
  } finally {
    await env.cleanup();
  }
}
