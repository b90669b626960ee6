import { compareStages } from './classify.js';
import type { MetricsSummary } from './summary.js';

/**
 * The last 15 minutes of each stage's throughput, lags and freshness, for GET /metrics/history and
 * the dashboard's charts. Fed with every /metrics summary the API derives (its background sampler's
 * and its callers'), downsampled to one point per STEP_MS per series: within a step, throughput is
 * the mean of the observed rates, lags and freshness the worst (max) observed. Bounded: points older
 * than RETENTION_MS are dropped at each record, and at most MAX_SERIES series are kept (the ones
 * updated longest ago go first), so memory stays under MAX_SERIES × RETENTION_MS / STEP_MS points
 * whatever the pipeline reports. Pure: time is passed in.
 */

/** One point per series per step. */
export const STEP_MS = 5000;
/** How much history is kept. */
export const RETENTION_MS = 15 * 60_000;
/** Stages × metrics × statistics kept at most (a pipeline has a few dozen). */
export const MAX_SERIES = 200;

export type TrendKind = 'throughput' | 'lag' | 'freshness';
/** Time values (freshness, time lags) are in seconds whatever unit their metric uses. */
export type TrendUnit = 'records/s' | 'records' | 'seconds' | 'bytes';
export type TrendStat = 'per_second' | 'value' | 'p50' | 'p99';

export interface TrendPoint {
  /** Start of the step, ms since epoch. */
  t: number;
  v: number;
}

export interface TrendSeries {
  kind: TrendKind;
  stage: string;
  metric: string;
  stat: TrendStat;
  unit: TrendUnit;
  points: TrendPoint[];
}

const KINDS: readonly TrendKind[] = ['throughput', 'lag', 'freshness'];

interface Slot {
  t: number;
  sum: number;
  n: number;
  max: number;
}

interface Stored {
  kind: TrendKind;
  stage: string;
  metric: string;
  stat: TrendStat;
  unit: TrendUnit;
  slots: Slot[];
  updatedAt: number;
}

/** One observed value of one series, before downsampling. */
export interface TrendObservation {
  kind: TrendKind;
  stage: string;
  metric: string;
  stat: TrendStat;
  unit: TrendUnit;
  value: number;
}

export class TrendHistory {
  private readonly series = new Map<string, Stored>();

  constructor(
    readonly stepMs = STEP_MS,
    readonly retentionMs = RETENTION_MS,
    readonly maxSeries = MAX_SERIES,
  ) {}

  /** Records every series a summary carries (rates that are still null are skipped). */
  record(summary: MetricsSummary, nowMs: number): void {
    for (const o of observations(summary)) this.observe(o, nowMs);
    this.prune(nowMs);
  }

  /** Adds one observation to the step holding `nowMs` (non-finite values are ignored). */
  observe(o: TrendObservation, nowMs: number): void {
    if (!Number.isFinite(o.value) || !Number.isFinite(nowMs)) return;
    const key = `${o.kind}|${o.stage}|${o.metric}|${o.stat}`;
    let s = this.series.get(key);
    if (!s) {
      s = { kind: o.kind, stage: o.stage, metric: o.metric, stat: o.stat, unit: o.unit, slots: [], updatedAt: nowMs };
      this.series.set(key, s);
    }
    s.updatedAt = Math.max(s.updatedAt, nowMs);
    const t = Math.floor(nowMs / this.stepMs) * this.stepMs;
    const last = s.slots[s.slots.length - 1];
    if (last && last.t === t) {
      last.sum += o.value;
      last.n += 1;
      last.max = Math.max(last.max, o.value);
    } else if (!last || last.t < t) {
      s.slots.push({ t, sum: o.value, n: 1, max: o.value });
    }
    // An observation older than the last step (a clock step back) is dropped: points stay ordered.
  }

  /** Drops points older than the retention, series left without points, then the excess series. */
  prune(nowMs: number): void {
    const oldest = nowMs - this.retentionMs;
    for (const [key, s] of this.series) {
      let drop = 0;
      while (drop < s.slots.length && (s.slots[drop] as Slot).t < oldest) drop += 1;
      if (drop > 0) s.slots.splice(0, drop);
      if (s.slots.length === 0) this.series.delete(key);
    }
    if (this.series.size <= this.maxSeries) return;
    const byAge = [...this.series.entries()].sort((a, b) => a[1].updatedAt - b[1].updatedAt);
    for (const [key] of byAge.slice(0, this.series.size - this.maxSeries)) this.series.delete(key);
  }

  /** Every series with its points of the last `windowMs` (oldest first), in a stable order. */
  read(nowMs: number, windowMs = this.retentionMs): TrendSeries[] {
    const from = Math.floor((nowMs - Math.min(windowMs, this.retentionMs)) / this.stepMs) * this.stepMs;
    const out: TrendSeries[] = [];
    for (const s of this.series.values()) {
      const points = s.slots
        .filter((p) => p.t >= from)
        .map((p) => ({ t: p.t, v: round(s.kind === 'throughput' ? p.sum / p.n : p.max) }));
      if (points.length === 0) continue;
      out.push({ kind: s.kind, stage: s.stage, metric: s.metric, stat: s.stat, unit: s.unit, points });
    }
    return out.sort(
      (a, b) =>
        KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind) ||
        compareStages(a.stage, b.stage) ||
        a.metric.localeCompare(b.metric) ||
        a.stat.localeCompare(b.stat),
    );
  }

  /** Points held over all series (for tests and to watch the bound). */
  get pointCount(): number {
    let n = 0;
    for (const s of this.series.values()) n += s.slots.length;
    return n;
  }

  get seriesCount(): number {
    return this.series.size;
  }
}

/**
 * What a summary contributes: each stage's rate, every lag (time lags in seconds), and the
 * windowed freshness p50 and p99 (a cumulative percentile describes the whole run, not the moment).
 */
export function observations(summary: MetricsSummary): TrendObservation[] {
  const out: TrendObservation[] = [];
  for (const t of summary.throughput) {
    if (t.per_second === null) continue;
    out.push({
      kind: 'throughput',
      stage: t.stage,
      metric: t.metric,
      stat: 'per_second',
      unit: 'records/s',
      value: t.per_second,
    });
  }
  for (const l of summary.lags) {
    const value = l.unit === 'ms' ? l.value / 1000 : l.value;
    const unit: TrendUnit = l.unit === 'ms' || l.unit === 'seconds' ? 'seconds' : l.unit;
    out.push({ kind: 'lag', stage: l.stage, metric: l.metric, stat: 'value', unit, value });
  }
  for (const f of summary.freshness) {
    if (f.basis !== 'window') continue;
    const scale = f.unit === 'ms' ? 1 / 1000 : 1;
    for (const stat of ['p50', 'p99'] as const) {
      const v = f[stat];
      if (v !== null)
        out.push({ kind: 'freshness', stage: f.stage, metric: f.metric, stat, unit: 'seconds', value: v * scale });
    }
  }
  return out;
}

function round(v: number): number {
  return Math.round(v * 10_000) / 10_000;
}
