import { performance } from 'node:perf_hooks';

/**
 * Adaptive commit pacing: spaces a stage's commits (a Kafka transaction, a sink's write) by what
 * they cost, not by a fixed gap. After a commit that took `d` ms, the next may start `ratio × d`
 * ms after it ended (the cost smoothed over the last few commits, never more than `maxGapMs`).
 *
 * What that gives, whatever the stage and the machine:
 * - Light input: commits are cheap (a few ms), so the wait is a few ms and each record is
 *   committed almost as soon as it arrives: latency is about one commit.
 * - Heavy input: commits get dearer (larger, or the broker / database is busy), the wait grows
 *   with them, and what arrives meanwhile is grouped into the next commit. The share of time a
 *   stage keeps its downstream busy with commits stays at most 1 / (1 + ratio), so the per-commit
 *   cost (the broker's is ~10 requests per transaction whatever its size) is amortised over more
 *   records exactly when the machine has less to spare.
 * - Nothing sleeps when the wait is over: the owner asks `waitMs()` when it has something to
 *   commit and arms its own timer only for the remainder.
 *
 * One pacer per serial commit stream (the CDC's transactions, the processor's, a sink lane's
 * writes). Not thread-safe in any sense that matters here: calls come from one event loop.
 */

export interface CommitPacerOptions {
  /** Wait after a commit, as a multiple of its (smoothed) cost. 0 turns pacing off. */
  ratio: number;
  /** Upper bound of the wait, whatever the cost (a stage's configured batch wait). */
  maxGapMs: number;
}

/** Weight of the newest commit in the smoothed cost: about the last four commits count. */
const SMOOTHING = 0.25;

export class CommitPacer {
  private costMs = 0;
  private endedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly opts: CommitPacerOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(opts.ratio >= 0)) throw new RangeError('ratio must be 0 or more');
    if (!(opts.maxGapMs >= 0)) throw new RangeError('maxGapMs must be 0 or more');
  }

  /** Call when a commit starts; returns its start time, to hand back to `ended`. */
  started(): number {
    return this.now();
  }

  /** Call when the commit that `started` returned `startedAt` for has ended (committed or not). */
  ended(startedAt: number): void {
    const t = this.now();
    const cost = Math.max(0, t - startedAt);
    this.costMs = this.endedAt === Number.NEGATIVE_INFINITY ? cost : this.costMs + SMOOTHING * (cost - this.costMs);
    this.endedAt = t;
  }

  /** Milliseconds until the next commit may start (0: now). */
  waitMs(): number {
    const gap = Math.min(this.opts.maxGapMs, this.costMs * this.opts.ratio);
    return Math.max(0, this.endedAt + gap - this.now());
  }

  /** The smoothed cost of a commit, in ms (0 before the first one). */
  get smoothedCostMs(): number {
    return this.costMs;
  }
}
