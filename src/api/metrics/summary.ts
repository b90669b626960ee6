import type { LiveHeartbeat, PromMetric, PromSample } from '../heartbeats.js';
import { freshnessTarget } from './freshness-targets.js';
import {
  compareStages,
  flowPreference,
  isDlq,
  isFreshness,
  isLag,
  lagUnit,
  stageOf,
  type LagUnit,
} from './classify.js';
import { RATE_WINDOW_MS, SeriesHistory, seriesKey } from './history.js';
import { labelSource, mergeFamilies, type MetricSource } from './merge.js';
import { histogramQuantile, parseLe, sumBuckets, type Bucket } from './quantile.js';

/**
 * The JSON view of the pipeline's metrics (GET /metrics): throughput per stage, lags, end-to-end
 * freshness percentiles per sink, DLQ counts. Rates and windowed percentiles come from the
 * difference between successive samples of the same series, kept in a SeriesHistory across calls;
 * the first call (or a process that just appeared) has totals but `per_second: null`, except for a
 * process that started within the rate window: its counters count from zero since its start.
 */

export interface ThroughputEntry {
  stage: string;
  metric: string;
  total: number;
  per_second: number | null;
}
export interface LagEntry {
  stage: string;
  metric: string;
  unit: LagUnit;
  value: number;
}
export interface FreshnessEntry {
  stage: string;
  metric: string;
  /** `window`: observations of the last RATE_WINDOW_MS; `cumulative`: since the processes started. */
  basis: 'window' | 'cumulative';
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  unit: 'seconds' | 'ms';
  /** The stage's freshness promise in seconds (freshness-targets.ts). */
  target_seconds: number;
}
export interface DlqEntry {
  stage: string;
  metric: string;
  total: number;
  per_second: number | null;
}
export interface ComponentEntry {
  component: string;
  instance: string;
  uptime_seconds: number;
  heartbeat_age_seconds: number;
}

export interface MetricsSummary {
  generated_at: string;
  uptime_seconds: number;
  rate_window_seconds: number;
  components: ComponentEntry[];
  throughput: ThroughputEntry[];
  lags: LagEntry[];
  freshness: FreshnessEntry[];
  dlq: DlqEntry[];
  dlq_total: number;
}

export interface ComponentInfo {
  component: string;
  instance: string;
  startedAtMs: number;
  sentAtMs: number;
}

/** What `summarize` takes from published heartbeats: each one's registry as a source, and its process. */
export function heartbeatInputs(heartbeats: readonly LiveHeartbeat[]): {
  sources: MetricSource[];
  components: ComponentInfo[];
} {
  return {
    sources: heartbeats.map((hb) => ({
      component: hb.component,
      instance: hb.instance,
      atMs: hb.sentAtMs,
      metrics: hb.metricList,
    })),
    components: heartbeats.map((hb) => ({
      component: hb.component,
      instance: hb.instance,
      startedAtMs: Date.parse(hb.started_at),
      sentAtMs: hb.sentAtMs,
    })),
  };
}

const HISTORY_TYPES = new Set(['counter', 'histogram']);

export class MetricsSummarizer {
  private readonly history = new SeriesHistory();
  /** When each process (instance) was last sampled, to date the birth of its new series. */
  private readonly lastSeen = new Map<string, number>();

  /** Records the cumulative series of every source, then derives the summary. */
  summarize(
    sources: MetricSource[],
    components: ComponentInfo[],
    nowMs: number,
    uptimeSeconds: number,
  ): MetricsSummary {
    const startedAt = new Map(components.map((c) => [c.instance, c.startedAtMs]));
    for (const source of sources) {
      const seen = this.lastSeen.get(source.instance) ?? youngStart(startedAt.get(source.instance), source.atMs);
      for (const m of labelSource(source)) {
        if (!HISTORY_TYPES.has(m.type)) continue;
        for (const v of m.values)
          this.history.add(seriesKey(v.metricName ?? m.name, v.labels), source.atMs, v.value, seen);
      }
      const last = this.lastSeen.get(source.instance);
      if (last === undefined || source.atMs > last) this.lastSeen.set(source.instance, source.atMs);
    }
    this.history.forgetStale(nowMs);
    for (const [instance, at] of this.lastSeen) if (at < nowMs - 60_000) this.lastSeen.delete(instance);
    const families = mergeFamilies(sources);
    const dlq = this.counters(families, isDlq);
    return {
      generated_at: new Date(nowMs).toISOString(),
      uptime_seconds: round(uptimeSeconds, 3),
      rate_window_seconds: RATE_WINDOW_MS / 1000,
      components: components
        .map((c) => ({
          component: c.component,
          instance: c.instance,
          uptime_seconds: round(Math.max(0, nowMs - c.startedAtMs) / 1000, 1),
          heartbeat_age_seconds: round(Math.max(0, nowMs - c.sentAtMs) / 1000, 1),
        }))
        .sort((a, b) => compareStages(a.component, b.component) || a.instance.localeCompare(b.instance)),
      throughput: this.throughput(families),
      lags: lags(families),
      freshness: this.freshness(families),
      dlq,
      dlq_total: dlq.reduce((s, d) => s + d.total, 0),
    };
  }

  private rateOf(name: string, samples: PromSample[]): number | null {
    let rate: number | null = null;
    for (const v of samples) {
      const inc = this.history.increase(seriesKey(v.metricName ?? name, v.labels));
      if (inc) rate = (rate ?? 0) + inc.increase / inc.seconds;
    }
    return rate === null ? null : round(rate, 3);
  }

  private counters(families: PromMetric[], match: (name: string, type: string) => boolean): DlqEntry[] {
    const out: DlqEntry[] = [];
    for (const m of families) {
      if (!match(m.name, m.type)) continue;
      for (const [stage, samples] of groupByStage(m)) {
        out.push({ stage, metric: m.name, total: sum(samples), per_second: this.rateOf(m.name, samples) });
      }
    }
    return out.sort((a, b) => compareStages(a.stage, b.stage) || a.metric.localeCompare(b.metric));
  }

  /** One entry per stage: its preferred flow counter (records leaving it, if it counts those). */
  private throughput(families: PromMetric[]): ThroughputEntry[] {
    const best = new Map<string, { pref: number; entry: ThroughputEntry }>();
    for (const m of families) {
      const pref = flowPreference(m.name, m.type);
      if (pref === 0) continue;
      for (const [stage, samples] of groupByStage(m)) {
        const seen = best.get(stage);
        if (seen && seen.pref >= pref) continue;
        best.set(stage, {
          pref,
          entry: { stage, metric: m.name, total: sum(samples), per_second: this.rateOf(m.name, samples) },
        });
      }
    }
    return [...best.values()].map((b) => b.entry).sort((a, b) => compareStages(a.stage, b.stage));
  }

  private freshness(families: PromMetric[]): FreshnessEntry[] {
    const out: FreshnessEntry[] = [];
    for (const m of families) {
      if (!isFreshness(m.name, m.type)) continue;
      const bucketName = `${m.name}_bucket`;
      for (const [stage, samples] of groupByStage(m)) {
        const buckets = samples.filter((v) => v.metricName === bucketName);
        const windowed = sumBuckets([
          buckets.map((v) => ({
            le: parseLe(v.labels.le),
            count: this.history.increase(seriesKey(bucketName, v.labels))?.increase ?? 0,
          })),
        ]);
        const cumulative = sumBuckets([buckets.map((v) => ({ le: parseLe(v.labels.le), count: v.value }))]);
        const useWindow = total(windowed) > 0;
        const chosen = useWindow ? windowed : cumulative;
        out.push({
          stage,
          metric: m.name,
          basis: useWindow ? 'window' : 'cumulative',
          count: total(chosen),
          p50: roundOrNull(histogramQuantile(0.5, chosen)),
          p95: roundOrNull(histogramQuantile(0.95, chosen)),
          p99: roundOrNull(histogramQuantile(0.99, chosen)),
          unit: /_ms$/.test(m.name) ? 'ms' : 'seconds',
          target_seconds: freshnessTarget(stage),
        });
      }
    }
    return out.sort((a, b) => compareStages(a.stage, b.stage) || a.metric.localeCompare(b.metric));
  }
}

/**
 * The base of a process seen for the first time: its start (when every counter of it was zero), if
 * it started within the rate window, so a stage that just (re)started has a rate from its first
 * heartbeat; otherwise none (its rate waits for a second sample).
 */
function youngStart(startedAtMs: number | undefined, atMs: number): number | undefined {
  if (startedAtMs === undefined || !Number.isFinite(startedAtMs)) return undefined;
  return startedAtMs < atMs && atMs - startedAtMs <= RATE_WINDOW_MS ? startedAtMs : undefined;
}

/** Lag-like gauges per stage: record counts and bytes add up across instances, times take the max. */
function lags(families: PromMetric[]): LagEntry[] {
  const out: LagEntry[] = [];
  for (const m of families) {
    if (!isLag(m.name, m.type)) continue;
    const unit = lagUnit(m.name);
    for (const [stage, samples] of groupByStage(m)) {
      const finite = samples.map((v) => v.value).filter(Number.isFinite);
      if (finite.length === 0) continue;
      const value = unit === 'ms' || unit === 'seconds' ? Math.max(...finite) : finite.reduce((s, v) => s + v, 0);
      out.push({ stage, metric: m.name, unit, value: round(value, 3) });
    }
  }
  return out.sort((a, b) => compareStages(a.stage, b.stage) || a.metric.localeCompare(b.metric));
}

function groupByStage(m: PromMetric): Map<string, PromSample[]> {
  const groups = new Map<string, PromSample[]>();
  for (const v of m.values) {
    const stage = stageOf(m.name, v.labels);
    const list = groups.get(stage);
    if (list) list.push(v);
    else groups.set(stage, [v]);
  }
  return groups;
}

function sum(samples: PromSample[]): number {
  return samples.reduce((s, v) => s + (Number.isFinite(v.value) ? v.value : 0), 0);
}

function total(buckets: Bucket[]): number {
  return buckets.length === 0 ? 0 : (buckets[buckets.length - 1] as Bucket).count;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function roundOrNull(v: number | null): number | null {
  return v === null ? null : round(v, 4);
}
