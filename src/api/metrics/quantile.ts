/**
 * Quantiles from Prometheus histogram buckets, the way PromQL's histogram_quantile estimates them:
 * find the bucket holding the rank, interpolate linearly inside it (the first bucket starts at 0),
 * and answer the highest finite bound when the rank falls in the +Inf bucket. Pure.
 */

export interface Bucket {
  /** Upper bound (`le`); Infinity for +Inf. */
  le: number;
  /** Cumulative count of observations <= le. */
  count: number;
}

/** Parses an `le` label value ("0.5", "+Inf"). */
export function parseLe(le: string | number | undefined): number {
  if (le === undefined) return Number.NaN;
  if (typeof le === 'number') return le;
  if (le === '+Inf' || le === 'Inf') return Number.POSITIVE_INFINITY;
  return Number(le);
}

/** q in [0, 1]; null when the histogram holds no observation. */
export function histogramQuantile(q: number, buckets: Bucket[]): number | null {
  const sorted = buckets.filter((b) => !Number.isNaN(b.le)).sort((a, b) => a.le - b.le);
  if (sorted.length === 0) return null;
  const total = (sorted[sorted.length - 1] as Bucket).count;
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of sorted) {
    if (b.count >= rank) {
      if (b.le === Number.POSITIVE_INFINITY) return prevLe;
      const inBucket = b.count - prevCount;
      if (inBucket <= 0) return b.le;
      return prevLe + (b.le - prevLe) * ((rank - prevCount) / inBucket);
    }
    prevLe = b.le === Number.POSITIVE_INFINITY ? prevLe : b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** Adds bucket counts of several histograms with the same bounds (by `le`). */
export function sumBuckets(lists: Bucket[][]): Bucket[] {
  const byLe = new Map<number, number>();
  for (const list of lists) for (const b of list) byLe.set(b.le, (byLe.get(b.le) ?? 0) + b.count);
  return [...byLe.entries()].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}
