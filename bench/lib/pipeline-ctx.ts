import type pg from 'pg';
import type { Config } from '../../src/config/load.js';
import type { Admin } from '../../src/kafka/client.js';
import { groupLag, slotLagBytes } from './lag.js';
import type { PhaseMeter } from './proc-stats.js';
import type { BenchResult } from '../types.js';

/**
 * What the pipeline bench's phases share (bench/pipeline.bench.ts): its context, every stage's lag,
 * waiting until the pipeline is quiet, and each process's share of the cores over a phase.
 */

export const SINKS = ['redis', 'warehouse', 'external'] as const;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Progress on stderr while a phase runs (the figures are printed when the bench ends). */
export const say = (m: string) => process.stderr.write(`   · ${new Date().toISOString().slice(11, 19)} ${m}\n`);

export interface Ctx {
  config: Config;
  env: NodeJS.ProcessEnv;
  /** The running generator process, measured with the others. */
  generatorPid?: number;
  admin: Admin;
  db: pg.Client;
  meter: PhaseMeter;
  out: BenchResult[];
}

/** Every Kafka-consuming stage's lag, and the CDC slot's unconfirmed WAL. */
export async function lags(c: Ctx): Promise<Record<string, number>> {
  const { config, admin } = c;
  const out: Record<string, number> = { 'cdc (WAL bytes)': await slotLagBytes(c.db, config.CDC_SLOT_NAME) };
  out.processor = await groupLag(
    admin,
    `engage-processor.${config.KAFKA_CLIENT_ID}`,
    config.KAFKA_TOPIC_ENGAGEMENT_EVENTS,
  );
  for (const s of SINKS)
    out[`sink-${s}`] = await groupLag(admin, `engage-sink-${s}.${config.KAFKA_CLIENT_ID}`, config.KAFKA_TOPIC_ENRICHED);
  return out;
}

/** Waits until every group's lag is at most one marker per partition and the slot is confirmed. */
export async function quiet(c: Ctx, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  const slack = c.config.KAFKA_TOPIC_PARTITIONS;
  for (;;) {
    c.meter.sample();
    const l = await lags(c);
    if (Object.entries(l).every(([k, v]) => (k.startsWith('cdc') ? v < 1_000_000 : v <= slack))) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`pipeline not quiet after ${timeoutMs / 1000} s: ${JSON.stringify(l)}`);
    await sleep(250);
  }
}

/** Each process's share of a core over the phase; with `events`, also its CPU per event. */
export function reportShares(c: Ctx, phase: string, m: ReturnType<PhaseMeter['finish']>, events?: number): void {
  const perEvent = (pct: number) =>
    events ? `; ${Math.round(((pct / 100) * m.seconds * 1e6) / events)} µs CPU per event` : '';
  for (const s of m.shares)
    c.out.push({
      name: `  ${phase}: ${s.name} CPU / peak RSS`,
      value: s.cpuPct,
      unit: '% of a core',
      note: `${s.peakRssMiB} MiB${perEvent(s.cpuPct)}`,
    });
  const total = m.shares.reduce((sum, s) => sum + s.cpuPct, 0);
  c.out.push({
    name: `  ${phase}: all of the above`,
    value: total,
    unit: '% of a core',
    note: `of 200 %${perEvent(total)}`,
  });
  if (events)
    c.out.push({
      name: `  ${phase}: CPU per event, every process`,
      value: Math.round(((total / 100) * m.seconds * 1e6) / events),
      unit: 'µs',
    });
  c.out.push({
    name: `  ${phase}: load average (1 min) at its end`,
    value: m.loadEnd,
    unit: '',
    note: `from ${m.load}`,
  });
}
