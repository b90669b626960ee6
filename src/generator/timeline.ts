/**
 * When sessions start: a run is planned as time slices, each with an exact number of events to
 * produce (its quota). Batch mode spreads its rows over the last few minutes; historical mode over
 * the last D days with a daily rhythm (quiet nights, commute and evening peaks). Quotas are whole
 * numbers that add up exactly to the requested total. Pure.
 */

export interface Slice {
  /** Sessions start in [startMs, endMs). */
  startMs: number;
  endMs: number;
  /** Events to produce from sessions starting in this slice. */
  quota: number;
}

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** Relative activity per UTC hour of day (0–23): night trough, morning commute, evening peak. */
export const HOURLY_WEIGHTS: readonly number[] = [
  0.3, 0.18, 0.12, 0.09, 0.09, 0.16, 0.42, 0.85, 1.15, 1.0, 0.86, 0.86, 1.05, 1.0, 0.86, 0.82, 0.92, 1.08, 1.22, 1.36,
  1.42, 1.26, 0.92, 0.55,
];

/** Splits `total` into integers proportional to `weights` (largest remainder), summing to `total`. */
export function allocate(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (weights.length === 0 || sum <= 0) throw new RangeError('allocate needs positive weights');
  const exact = weights.map((w) => (total * w) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, frac: x - Math.floor(x) })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    out[i] = (out[i] as number) + 1;
    left--;
  }
  return out;
}

/**
 * Batch mode: `total` events from sessions starting over the `windowMs` before `nowMs`, in slices
 * of at most `maxPerSlice` events (the unit of generation and of one COPY).
 */
export function batchSlices(nowMs: number, windowMs: number, total: number, maxPerSlice = 20_000): Slice[] {
  if (total <= 0) return [];
  const count = Math.max(1, Math.ceil(total / maxPerSlice));
  const width = windowMs / count;
  const quotas = allocate(total, new Array<number>(count).fill(1));
  return quotas.map((quota, i) => ({
    startMs: Math.floor(nowMs - windowMs + i * width),
    endMs: Math.floor(nowMs - windowMs + (i + 1) * width),
    quota,
  }));
}

/**
 * Historical mode: `days` days ending at `nowMs`, each with exactly `eventsPerDay` events, spread
 * over its hours by HOURLY_WEIGHTS (the hour of day of each slice's start, UTC). Slices holding
 * more than `maxPerSlice` events are split further.
 */
export function historicalSlices(nowMs: number, days: number, eventsPerDay: number, maxPerSlice = 50_000): Slice[] {
  const slices: Slice[] = [];
  const origin = nowMs - days * DAY_MS;
  for (let d = 0; d < days; d++) {
    const dayStart = origin + d * DAY_MS;
    const weights = Array.from(
      { length: 24 },
      (_, h) => HOURLY_WEIGHTS[new Date(dayStart + h * HOUR_MS).getUTCHours()] as number,
    );
    allocate(eventsPerDay, weights).forEach((quota, h) => {
      if (quota === 0) return;
      const parts = Math.ceil(quota / maxPerSlice);
      const sub = allocate(quota, new Array<number>(parts).fill(1));
      sub.forEach((q, p) => {
        slices.push({
          startMs: Math.floor(dayStart + h * HOUR_MS + (p * HOUR_MS) / parts),
          endMs: Math.floor(dayStart + h * HOUR_MS + ((p + 1) * HOUR_MS) / parts),
          quota: q,
        });
      });
    });
  }
  return slices;
}
