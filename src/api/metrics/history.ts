/**
 * Recent samples of cumulative series (counters, histogram buckets), keyed by series, so /metrics
 * can turn totals into per-second rates and windowed histograms. Samples carry the time the
 * producing process took them (its heartbeat's sent_at), not the time the API read them, so a
 * rate is exact whatever the polling rhythm. Whoever polls adds samples; nothing runs in the
 * background.
 */

/** Rates are computed over (up to) this much recent history. */
export const RATE_WINDOW_MS = 10_000;
/** Series not updated for this long (their process is gone) are forgotten. */
const FORGET_AFTER_MS = 60_000;
/**
 * Samples closer than this to the previous one are dropped: heartbeats come every 2 s, and the
 * API's own series are sampled at each call, so /metrics under load keeps a few samples, not one
 * per request.
 */
const MIN_SPACING_MS = 500;

interface Sample {
  t: number;
  v: number;
}

export interface Increase {
  /** How much the series grew over `seconds` (a reset counts from zero). */
  increase: number;
  seconds: number;
}

export class SeriesHistory {
  private readonly series = new Map<string, Sample[]>();

  constructor(private readonly windowMs = RATE_WINDOW_MS) {}

  /**
   * Records `v` at `t`; a sample less than MIN_SPACING_MS after the last one of its series is
   * ignored. `bornAfter`:
   * for a series seen for the first time, a time its process was already reporting without it,
   * so it counts from zero since then (a counter appears at its first increment).
   */
  add(key: string, t: number, v: number, bornAfter?: number): void {
    if (!Number.isFinite(v) || !Number.isFinite(t)) return;
    const list = this.series.get(key);
    if (!list) {
      this.series.set(
        key,
        bornAfter !== undefined && bornAfter < t
          ? [
              { t: bornAfter, v: 0 },
              { t, v },
            ]
          : [{ t, v }],
      );
      return;
    }
    const last = list[list.length - 1];
    if (last && t - last.t < MIN_SPACING_MS) return;
    list.push({ t, v });
    // Keep one sample older than the window as the base of the next rate.
    while (list.length > 2 && (list[1]?.t ?? t) < t - this.windowMs) list.shift();
  }

  /**
   * Growth between the oldest sample inside the window (or the one just before it) and the newest;
   * null until the series has two samples.
   */
  increase(key: string): Increase | null {
    const list = this.series.get(key);
    if (!list || list.length < 2) return null;
    const last = list[list.length - 1] as Sample;
    const first = list[0] as Sample;
    const seconds = (last.t - first.t) / 1000;
    if (seconds <= 0) return null;
    let increase = 0;
    for (let i = 1; i < list.length; i += 1) {
      const prev = (list[i - 1] as Sample).v;
      const cur = (list[i] as Sample).v;
      increase += cur >= prev ? cur - prev : cur;
    }
    return { increase, seconds };
  }

  /** Drops series whose last sample is older than a minute before `nowMs`. */
  forgetStale(nowMs: number): void {
    for (const [key, list] of this.series) {
      const last = list[list.length - 1];
      if (!last || last.t < nowMs - FORGET_AFTER_MS) this.series.delete(key);
    }
  }

  get size(): number {
    return this.series.size;
  }
}

/** A stable key for one series: metric sample name plus its labels in name order. */
export function seriesKey(sampleName: string, labels: Record<string, string | number>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${String(labels[k])}`);
  return `${sampleName}{${parts.join(',')}}`;
}
