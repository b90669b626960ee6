import type { PipelineError } from '../core/errors.js';
import type { DeliveryOutcome } from './delivery-types.js';
import type { DeliveryLane } from './delivery-lane.js';

/**
 * This runner's own counters and the views built from them: `snapshot()` (typed, for tests and
 * the replay command) and `status()` (the heartbeat's JSON). Prometheus metrics are process-wide
 * (sink-metrics.ts); these count one runner only.
 */

export interface PartitionSnapshot {
  partition: number;
  /** Next offset to settle: everything before it is written or parked in the DLQ. */
  nextOffset: string;
  highWatermark: string | null;
  lag: number;
  queued: number;
  paused: boolean;
  busy: boolean;
  lastWriteAt: number | null;
}

export interface SinkRunnerSnapshot {
  sink: string;
  groupId: string;
  topic: string;
  stopping: boolean;
  partitions: PartitionSnapshot[];
  lag: number;
  recordsIn: number;
  recordsOut: number;
  dlq: number;
  batches: number;
  errors: number;
  pauses: number;
  stateLost: number;
  lastWriteAt: number | null;
  lastError: { code: string; message: string; at: number } | null;
}

export class RunnerStats {
  recordsIn = 0;
  recordsOut = 0;
  dlq = 0;
  batches = 0;
  errors = 0;
  pauses = 0;
  stateLost = 0;
  lastWriteAt: number | null = null;
  lastError: SinkRunnerSnapshot['lastError'] = null;
  /** Since when a write has been failing with retriable errors (an outage being waited out), or null. */
  waitingSince: number | null = null;

  constructor(
    readonly sink: string,
    readonly groupId: string,
    readonly topic: string,
  ) {}

  delivered(outcome: DeliveryOutcome): void {
    if (outcome.kind !== 'settled') return;
    this.batches++;
    this.recordsOut += outcome.written;
    this.dlq += outcome.dlq;
    this.lastWriteAt = Date.now();
    this.waitingSince = null;
  }

  error(err: PipelineError): void {
    this.errors++;
    this.lastError = { code: err.code, message: err.message, at: Date.now() };
    if (err.retriable) this.waitingSince ??= this.lastError.at;
  }

  lag(lanes: Map<number, DeliveryLane>): number {
    let total = 0;
    for (const lane of lanes.values()) total += lane.lag();
    return total;
  }

  snapshot(lanes: Map<number, DeliveryLane>, stopping: boolean): SinkRunnerSnapshot {
    const partitions = [...lanes.values()]
      .map((l) => ({
        partition: l.partition,
        nextOffset: l.nextOffset,
        highWatermark: l.highWatermark,
        lag: l.lag(),
        queued: l.queue.size,
        paused: l.paused,
        busy: l.busy,
        lastWriteAt: l.lastWriteAt,
      }))
      .sort((a, b) => a.partition - b.partition);
    return {
      sink: this.sink,
      groupId: this.groupId,
      topic: this.topic,
      stopping,
      partitions,
      lag: this.lag(lanes),
      recordsIn: this.recordsIn,
      recordsOut: this.recordsOut,
      dlq: this.dlq,
      batches: this.batches,
      errors: this.errors,
      pauses: this.pauses,
      stateLost: this.stateLost,
      lastWriteAt: this.lastWriteAt,
      lastError: this.lastError,
    };
  }

  /** The heartbeat's view: small, JSON-friendly. */
  status(lanes: Map<number, DeliveryLane>): Record<string, unknown> {
    const paused = [...lanes.values()].filter((l) => l.paused).map((l) => l.partition);
    return {
      sink: this.sink,
      group: this.groupId,
      lag: this.lag(lanes),
      partitions: [...lanes.keys()].sort((a, b) => a - b),
      // Where a backlog sits: a hot key's partition drains one batch at a time (docs/operations.md).
      lag_by_partition: Object.fromEntries(
        [...lanes.values()].sort((a, b) => a.partition - b.partition).map((l) => [l.partition, l.lag()]),
      ),
      paused,
      records_in: this.recordsIn,
      records_out: this.recordsOut,
      dlq: this.dlq,
      errors: this.errors,
      state_lost: this.stateLost,
      last_write_at: this.lastWriteAt === null ? null : new Date(this.lastWriteAt).toISOString(),
      last_error: this.lastError,
      // An outage being waited out: /health reports the stage degraded (not a bad record: nothing is parked).
      waiting_since: this.waitingSince === null ? null : new Date(this.waitingSince).toISOString(),
    };
  }

  summary(): Record<string, number> {
    return {
      recordsIn: this.recordsIn,
      recordsOut: this.recordsOut,
      dlq: this.dlq,
      batches: this.batches,
      errors: this.errors,
      stateLost: this.stateLost,
    };
  }
}
