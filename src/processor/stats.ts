import { performance } from 'node:perf_hooks';
import type { BatchOutcome } from './batch.js';
import type { ProcessorMetrics } from './metrics.js';

/**
 * One processor instance's counters for `status()` (the heartbeat) and the Prometheus metrics it
 * feeds. Output counters move only after the batch's transaction committed.
 */
export class ProcessorStats {
  private readonly assigned = new Set<number>();
  private readonly lag = new Map<number, number>();
  private readonly dlqByReason = new Map<string, number>();
  private recordsIn = 0;
  private recordsOut = 0;
  private dlq = 0;
  private skipped = 0;
  private batches = 0;
  private failedBatches = 0;
  private inFlight = 0;
  private lastCommitAt: string | null = null;

  constructor(
    private readonly groupId: string,
    private readonly transactionalId: string,
    private readonly metrics: ProcessorMetrics,
  ) {}

  assign(partitions: number[]): void {
    for (const p of partitions) this.assigned.add(p);
  }

  revoke(partitions: number[]): void {
    for (const p of partitions) {
      this.assigned.delete(p);
      this.lag.delete(p);
      this.metrics.consumerLag.remove({ partition: String(p) });
    }
  }

  batchStarted(n: number): void {
    this.recordsIn += n;
    this.metrics.recordsIn.inc(n);
    this.inFlight += n;
    this.metrics.inFlight.inc(n);
  }

  batchEnded(n: number): void {
    this.inFlight -= n;
    this.metrics.inFlight.dec(n);
  }

  batchFailed(_n: number): void {
    this.failedBatches++;
  }

  batchCommitted(partition: number, _n: number, o: BatchOutcome, handedOverAt: number, lag: number): void {
    const m = this.metrics;
    const nowMs = Date.now();
    this.batches++;
    this.recordsOut += o.enriched;
    m.recordsOut.inc(o.enriched);
    for (const [reason, k] of o.dlq) {
      this.dlq += k;
      this.dlqByReason.set(reason, (this.dlqByReason.get(reason) ?? 0) + k);
      m.dlq.inc({ reason }, k);
    }
    for (const [reason, k] of o.skipped) {
      this.skipped += k;
      m.skipped.inc({ reason }, k);
    }
    for (const [flag, k] of o.flags) m.flags.inc({ flag }, k);
    for (const ts of o.sourceTs) m.freshnessSeconds.observe(Math.max(0, nowMs - ts) / 1000);
    if (o.contentWait)
      m.contentWaitSeconds.observe(
        { outcome: o.contentWait.unknown > 0 ? 'unknown' : 'found' },
        o.contentWait.ms / 1000,
      );
    m.batchSeconds.observe((performance.now() - handedOverAt) / 1000);
    this.setLag(partition, lag);
    this.lastCommitAt = new Date(nowMs).toISOString();
  }

  /** A partition's lag: at a batch's commit, and while it is idle (consumer caught up). */
  setLag(partition: number, lag: number): void {
    if (!Number.isFinite(lag) || !this.assigned.has(partition)) return;
    this.lag.set(partition, Math.max(0, lag));
    this.metrics.consumerLag.set({ partition: String(partition) }, Math.max(0, lag));
  }

  snapshot(): Record<string, unknown> {
    let totalLag = 0;
    for (const v of this.lag.values()) totalLag += v;
    return {
      group: this.groupId,
      transactional_id: this.transactionalId,
      assigned: [...this.assigned].sort((a, b) => a - b),
      records_in: this.recordsIn,
      records_out: this.recordsOut,
      dlq: this.dlq,
      dlq_by_reason: Object.fromEntries(this.dlqByReason),
      skipped: this.skipped,
      batches: this.batches,
      failed_batches: this.failedBatches,
      in_flight: this.inFlight,
      lag: totalLag,
      last_commit_at: this.lastCommitAt,
    };
  }
}
