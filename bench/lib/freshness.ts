import { histogramQuantile, parseLe, type Bucket } from '../../src/api/metrics/quantile.js';

/**
 * Freshness over one phase of a benchmark, from the pipeline's own Prometheus histograms as the
 * monitoring API exposes them (GET /metrics/prometheus, every component merged): scrape at the
 * start and at the end of the phase, subtract the bucket counts, and estimate quantiles from the
 * difference — so the figure covers exactly the observations made during the phase.
 */

/** stage name → cumulative bucket counts (le → count), summed over instances. */
export type HistogramSnapshot = Map<string, Map<number, number>>;

const sinkOf = (labels: string) => `sink-${/sink="([^"]+)"/.exec(labels)?.[1] ?? '?'}`;
/** Freshness per stage, and the durations that explain it (a stage name with a suffix). */
const SERIES = [
  { metric: 'engage_processor_freshness_seconds_bucket', stage: () => 'processor' },
  { metric: 'engage_sink_freshness_seconds_bucket', stage: sinkOf },
  { metric: 'engage_processor_transaction_duration_seconds_bucket', stage: () => 'processor transaction' },
  { metric: 'engage_processor_batch_duration_seconds_bucket', stage: () => 'processor batch' },
  { metric: 'engage_sink_batch_duration_seconds_bucket', stage: (labels: string) => `${sinkOf(labels)} batch write` },
];

export function parseFreshness(promText: string): HistogramSnapshot {
  const out: HistogramSnapshot = new Map();
  for (const line of promText.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\}\s+([0-9.eE+-]+)/.exec(line);
    if (!m) continue;
    const series = SERIES.find((s) => s.metric === m[1]);
    if (!series) continue;
    const labels = m[2] ?? '';
    const le = parseLe(/le="([^"]+)"/.exec(labels)?.[1]);
    const stage = series.stage(labels);
    const buckets = out.get(stage) ?? new Map<number, number>();
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[3]));
    out.set(stage, buckets);
  }
  return out;
}

export async function scrapeFreshness(apiUrl: string): Promise<HistogramSnapshot> {
  const res = await fetch(`${apiUrl}/metrics/prometheus`);
  if (!res.ok) throw new Error(`GET /metrics/prometheus: HTTP ${res.status}`);
  return parseFreshness(await res.text());
}

export interface StageFreshness {
  stage: string;
  count: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** The bucket bounds (ms) the p99 falls between: the estimate is interpolated inside them. */
  p99BucketMs: [number, number] | null;
}

/** Quantiles of what was observed between two snapshots, per stage. */
export function freshnessBetween(before: HistogramSnapshot, after: HistogramSnapshot): StageFreshness[] {
  const out: StageFreshness[] = [];
  for (const [stage, buckets] of after) {
    const prev = before.get(stage);
    const diff: Bucket[] = [...buckets]
      .map(([le, count]) => ({ le, count: count - (prev?.get(le) ?? 0) }))
      .sort((a, b) => a.le - b.le);
    const count = diff[diff.length - 1]?.count ?? 0;
    const q = (p: number) => {
      const v = histogramQuantile(p, diff);
      return v === null ? null : Math.round(v * 1000);
    };
    const rank = 0.99 * count;
    const idx = diff.findIndex((b) => b.count >= rank);
    const p99BucketMs: [number, number] | null =
      idx < 0 ? null : [Math.round((diff[idx - 1]?.le ?? 0) * 1000), Math.round((diff[idx]?.le ?? 0) * 1000)];
    out.push({ stage, count, p50Ms: q(0.5), p99Ms: q(0.99), p99BucketMs });
  }
  return out.sort((a, b) => a.stage.localeCompare(b.stage));
}
