/**
 * A per-partition queue that decides when a batch is due: by size (`maxRecords`), by time (the
 * oldest queued item has waited `maxWaitMs`), or — `paced` — as soon as the owner's commit pacer
 * allows (runtime/commit-pacer.ts: about one write's cost after the previous write ended, so a
 * light stream is written at once and a heavy one in larger batches); whichever comes first; or at
 * once when draining.
 * It also tells the runner when to apply backpressure: `full()` past `maxQueued` items (pause the
 * partition), `drained()` once at most one batch is left (resume it). No I/O, no timers: the
 * owner asks `dueInMs()` to arm its own timer.
 */

export interface BatchingPolicy {
  maxRecords: number;
  maxWaitMs: number;
  /** Queued items past which the partition is paused (>= maxRecords). */
  maxQueued: number;
  /** A batch is also due once the pacer allows: `maxWaitMs` is then only the upper bound. */
  paced?: boolean;
}

export class PartitionQueue<T> {
  private items: T[] = [];
  /** When the oldest queued item arrived (ms), or undefined when empty. */
  private oldestAt: number | undefined;

  constructor(
    readonly policy: BatchingPolicy,
    private readonly now: () => number = Date.now,
    /** With `policy.paced`: ms until the owner's pacer lets the next batch go (0: now). */
    private readonly paceWaitMs: () => number = () => 0,
  ) {
    if (policy.maxRecords < 1) throw new RangeError('maxRecords must be at least 1');
    if (policy.maxQueued < policy.maxRecords) throw new RangeError('maxQueued must be at least maxRecords');
  }

  get size(): number {
    return this.items.length;
  }

  push(items: readonly T[]): void {
    if (items.length === 0) return;
    if (this.items.length === 0) this.oldestAt = this.now();
    for (const item of items) this.items.push(item);
  }

  /** True when a batch should be taken now. */
  ready(draining = false): boolean {
    if (this.items.length === 0) return false;
    if (draining || this.items.length >= this.policy.maxRecords) return true;
    if (this.policy.paced && this.paceWaitMs() <= 0) return true;
    return this.now() - (this.oldestAt ?? this.now()) >= this.policy.maxWaitMs;
  }

  /** Milliseconds until a batch is due by time (0 when due now), or undefined when empty. */
  dueInMs(): number | undefined {
    if (this.items.length === 0) return undefined;
    if (this.items.length >= this.policy.maxRecords) return 0;
    const byAge = Math.max(0, (this.oldestAt ?? this.now()) + this.policy.maxWaitMs - this.now());
    return this.policy.paced ? Math.min(byAge, Math.max(0, this.paceWaitMs())) : byAge;
  }

  /**
   * Removes and returns the next batch (at most maxRecords items, in arrival order). Items left
   * behind keep the old arrival time: they are flushed no later than maxWaitMs after it, possibly
   * sooner.
   */
  take(): T[] {
    const batch = this.items.splice(0, this.policy.maxRecords);
    if (this.items.length === 0) this.oldestAt = undefined;
    return batch;
  }

  clear(): void {
    this.items = [];
    this.oldestAt = undefined;
  }

  full(): boolean {
    return this.items.length >= this.policy.maxQueued;
  }

  drained(): boolean {
    return this.items.length <= this.policy.maxRecords;
  }
}
