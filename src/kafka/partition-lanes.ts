import type { RdKafka } from '@confluentinc/kafka-javascript';

/**
 * The per-partition state of a BatchConsumer (batch-consumer.ts): the messages fetched and not yet
 * handed over, the batch running, and a pending rewind. Pure bookkeeping; Kafka calls go through
 * the two callbacks.
 *
 * - Order: a lane accepts only offsets at or past the next one it expects, so a refetch after
 *   pause/resume never hands a message over twice.
 * - Backpressure: a lane holding a full batch pauses its partition (librdkafka's queue, outside
 *   the JS heap, is the better place to wait), and resumes it once the batch is taken. The owner
 *   may hold a partition paused too (`hold`); it is resumed only once neither wants it paused.
 * - Rewind: a failed batch marks its first offset; the lane drops everything it holds and all that
 *   arrives until the owner has seeked (`rewound`), then accepts from that offset on. The owner's
 *   own re-positioning (`reposition`) goes the same way.
 */

export interface Lane {
  readonly partition: number;
  buffer: RdKafka.Message[];
  /** Next offset accepted (−1: any, e.g. right after assignment). */
  expect: number;
  running: Promise<void> | null;
  paused: boolean;
  /** Paused by the owner (its own backpressure), whatever the lane holds. */
  held: boolean;
  /** Set while the partition must be seeked back to this offset. */
  rewindTo: number | null;
  /** Revoked: nothing more is handed over. */
  closed: boolean;
}

/** A lane a batch can be taken from: messages held, no batch running, not revoked or rewinding. */
function ready(lane: Lane): boolean {
  return lane.running === null && !lane.closed && lane.rewindTo === null && lane.buffer.length > 0;
}

export interface LaneControl {
  pause(partition: number): void;
  resume(partition: number): void;
}

export class PartitionLanes {
  private readonly lanes = new Map<number, Lane>();
  /** Round-robin position over the lanes, so one busy partition does not starve the others. */
  private cursor = 0;
  running = 0;

  constructor(
    private readonly topic: string,
    private readonly maxBatch: number,
    private readonly control: LaneControl,
    /** Messages held past which a lane pauses its partition. */
    private readonly pauseAt: number = maxBatch,
  ) {}

  open(partition: number): void {
    this.lanes.set(partition, { partition, buffer: [], expect: -1, running: null, paused: false, held: false, rewindTo: null, closed: false });
  }

  partitions(): number[] {
    return [...this.lanes.keys()].sort((a, b) => a - b);
  }

  /** Stops handing over the partitions' messages and drops what they hold (re-read by the next owner). */
  close(partitions: number[]): void {
    for (const p of partitions) {
      const lane = this.lanes.get(p);
      if (!lane) continue;
      lane.closed = true;
      lane.buffer = [];
    }
  }

  remove(partitions: number[]): void {
    for (const p of partitions) this.lanes.delete(p);
  }

  /** Resolves once no batch of these partitions is running. */
  async settled(partitions: number[]): Promise<void> {
    for (const p of partitions) {
      const lane = this.lanes.get(p);
      while (lane?.running) await lane.running;
    }
  }

  add(m: RdKafka.Message): void {
    const lane = this.lanes.get(m.partition);
    if (lane === undefined || lane.closed || lane.rewindTo !== null || m.topic !== this.topic) return;
    if (m.offset < lane.expect) return;
    lane.expect = m.offset + 1;
    lane.buffer.push(m);
    if (!lane.paused && lane.buffer.length >= this.pauseAt) this.sync(lane);
  }

  /** Partitions with nothing held, no batch running, no rewind pending, not revoked. */
  idle(): number[] {
    const out: number[] = [];
    for (const lane of this.lanes.values()) if (lane.running === null && !lane.closed && lane.rewindTo === null && lane.buffer.length === 0) out.push(lane.partition);
    return out;
  }

  /** Messages held, not yet handed over, across all lanes. */
  buffered(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.buffer.length;
    return n;
  }

  /** The owner's own pause (`on`) or resume of a partition; the partition stays paused while either wants it. */
  hold(partition: number, on: boolean): void {
    const lane = this.lanes.get(partition);
    if (lane === undefined || lane.held === on) return;
    lane.held = on;
    this.sync(lane);
  }

  /** Re-positions a partition at `offset` (the owner's seek): like a rewind, applied between consume calls. */
  reposition(partition: number, offset: number): void {
    const lane = this.lanes.get(partition);
    if (lane === undefined || lane.closed) return;
    lane.rewindTo = offset;
    lane.buffer = [];
  }

  /** Pauses or resumes the partition so it is paused exactly while held or holding a full batch. */
  private sync(lane: Lane): void {
    const want = lane.held || lane.buffer.length >= this.pauseAt;
    if (want === lane.paused) return;
    lane.paused = want;
    if (want) this.control.pause(lane.partition);
    else this.control.resume(lane.partition);
  }

  /** True when some lane has messages and no running batch (what `nextReady` would find). */
  hasReady(): boolean {
    for (const lane of this.lanes.values()) if (ready(lane)) return true;
    return false;
  }

  /** The next lane (round robin) with messages and no running batch. */
  nextReady(): Lane | undefined {
    const all = [...this.lanes.values()];
    for (let i = 0; i < all.length; i++) {
      const lane = all[(this.cursor + i) % all.length] as Lane;
      if (ready(lane)) {
        this.cursor = (this.cursor + i + 1) % all.length;
        return lane;
      }
    }
    return undefined;
  }

  /** Takes the next batch (≤ maxBatch) of a ready lane; the caller sets `running`. */
  take(lane: Lane): RdKafka.Message[] {
    let batch: RdKafka.Message[];
    if (lane.buffer.length <= this.maxBatch) {
      batch = lane.buffer;
      lane.buffer = [];
    } else batch = lane.buffer.splice(0, this.maxBatch);
    this.running++;
    if (lane.paused) this.sync(lane);
    return batch;
  }

  /** Ends a lane's running batch; `rewindFrom` (the batch's first offset) when it failed. */
  finish(lane: Lane, rewindFrom: number | null): void {
    lane.running = null;
    this.running--;
    if (rewindFrom === null || lane.closed) return;
    lane.rewindTo = rewindFrom;
    lane.buffer = [];
  }

  /** A lane's state, for diagnostics (undefined when the partition is not assigned here). */
  describe(partition: number): Record<string, unknown> | undefined {
    const lane = this.lanes.get(partition);
    if (lane === undefined) return undefined;
    const { buffer, running, ...rest } = lane;
    return { ...rest, buffered: buffer.length, running: running !== null };
  }

  /** Lanes waiting for their seek. */
  rewinding(): Lane[] {
    const out: Lane[] = [];
    for (const lane of this.lanes.values()) if (lane.rewindTo !== null && !lane.closed) out.push(lane);
    return out;
  }

  /** The owner has seeked the lane back: accept from its rewind offset on. */
  rewound(lane: Lane): void {
    lane.expect = lane.rewindTo ?? lane.expect;
    lane.rewindTo = null;
    if (lane.paused) this.sync(lane);
  }
}
