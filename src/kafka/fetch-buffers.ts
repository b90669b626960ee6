import type { RdKafka } from '@confluentinc/kafka-javascript';
import type { FetchView } from './fetch-probe.js';

/**
 * The fetch buffers of a BatchConsumer (batch-consumer.ts): per assigned partition, the messages
 * fetched and not yet handed over, the batch running, and a pending rewind. Pure bookkeeping; Kafka
 * calls go through the two callbacks. (Not the sink runner's delivery lanes,
 * src/runtime/delivery-lane.ts, which queue what these hand over until the sink has settled it.)
 *
 * - Order: a buffer accepts only offsets at or past the next one it expects, so a refetch after
 *   pause/resume never hands a message over twice.
 * - Backpressure: a buffer holding a full batch pauses its partition (librdkafka's queue, outside
 *   the JS heap, is the better place to wait), and resumes it once the batch is taken. The owner
 *   may hold a partition paused too (`hold`); it is resumed only once neither wants it paused.
 * - Rewind: a failed batch marks its first offset; the buffer drops everything it holds and all that
 *   arrives until the owner has seeked (`rewound`), then accepts from that offset on. The owner's
 *   own re-positioning (`reposition`) goes the same way.
 */

export interface FetchBuffer {
  readonly partition: number;
  messages: RdKafka.Message[];
  /** Next offset accepted (−1: any, e.g. right after assignment). */
  expect: number;
  running: Promise<void> | null;
  paused: boolean;
  /** Paused by the owner (its own backpressure), whatever the buffer holds. */
  held: boolean;
  /** Set while the partition must be seeked back to this offset. */
  rewindTo: number | null;
  /** Revoked: nothing more is handed over. */
  closed: boolean;
  /** When (the caller's clock) a message of it was last fetched, or it was opened. */
  fetchedAt: number;
  /** Where assign or the last seek placed it; null: at the group's committed offset. */
  from: number | null;
}

/** A buffer a batch can be taken from: messages held, no batch running, not revoked or rewinding. */
function ready(buffer: FetchBuffer): boolean {
  return buffer.running === null && !buffer.closed && buffer.rewindTo === null && buffer.messages.length > 0;
}

export interface FetchControl {
  pause(partition: number): void;
  resume(partition: number): void;
}

export class FetchBuffers {
  private readonly buffers = new Map<number, FetchBuffer>();
  /** Round-robin position over the buffers, so one busy partition does not starve the others. */
  private cursor = 0;
  running = 0;

  constructor(
    private readonly topic: string,
    private readonly maxBatch: number,
    private readonly control: FetchControl,
    /** Messages held past which a buffer pauses its partition. */
    private readonly pauseAt: number = maxBatch,
  ) {}

  /** A partition assigned at `at` (the caller's clock), placed at `from` (null: its committed offset). */
  open(partition: number, at = 0, from: number | null = null): void {
    this.buffers.set(partition, {
      partition,
      messages: [],
      expect: -1,
      running: null,
      paused: false,
      held: false,
      rewindTo: null,
      closed: false,
      fetchedAt: at,
      from,
    });
  }

  partitions(): number[] {
    return [...this.buffers.keys()].sort((a, b) => a - b);
  }

  /** Stops handing over the partitions' messages and drops what they hold (re-read by the next owner). */
  close(partitions: number[]): void {
    for (const p of partitions) {
      const buffer = this.buffers.get(p);
      if (!buffer) continue;
      buffer.closed = true;
      buffer.messages = [];
    }
  }

  remove(partitions: number[]): void {
    for (const p of partitions) this.buffers.delete(p);
  }

  /** Resolves once no batch of these partitions is running. */
  async settled(partitions: number[]): Promise<void> {
    for (const p of partitions) {
      const buffer = this.buffers.get(p);
      while (buffer?.running) await buffer.running;
    }
  }

  /** A message fetched at `at` (the caller's clock). */
  add(m: RdKafka.Message, at = 0): void {
    const buffer = this.buffers.get(m.partition);
    if (buffer === undefined || m.topic !== this.topic) return;
    buffer.fetchedAt = at;
    if (buffer.closed || buffer.rewindTo !== null || m.offset < buffer.expect) return;
    buffer.expect = m.offset + 1;
    buffer.messages.push(m);
    if (!buffer.paused && buffer.messages.length >= this.pauseAt) this.sync(buffer);
  }

  /** Partitions with nothing held, no batch running, no rewind pending, not revoked. */
  idle(): number[] {
    const out: number[] = [];
    for (const buffer of this.buffers.values())
      if (buffer.running === null && !buffer.closed && buffer.rewindTo === null && buffer.messages.length === 0)
        out.push(buffer.partition);
    return out;
  }

  /** Each buffer's fetching, for the fetch-stall probe (fetch-probe.ts): busy while it has work or is paused. */
  fetchViews(): FetchView[] {
    return [...this.buffers.values()].map((b) => ({
      partition: b.partition,
      busy: b.running !== null || b.messages.length > 0 || b.paused || b.closed || b.rewindTo !== null,
      fetchedAt: b.fetchedAt,
      from: b.from,
    }));
  }

  /** Messages held, not yet handed over, across all buffers. */
  buffered(): number {
    let n = 0;
    for (const buffer of this.buffers.values()) n += buffer.messages.length;
    return n;
  }

  /** The owner's own pause (`on`) or resume of a partition; the partition stays paused while either wants it. */
  hold(partition: number, on: boolean): void {
    const buffer = this.buffers.get(partition);
    if (buffer === undefined || buffer.held === on) return;
    buffer.held = on;
    this.sync(buffer);
  }

  /** Re-positions a partition at `offset` (the owner's seek): like a rewind, applied between consume calls. */
  reposition(partition: number, offset: number): void {
    const buffer = this.buffers.get(partition);
    if (buffer === undefined || buffer.closed) return;
    buffer.rewindTo = offset;
    buffer.messages = [];
  }

  /** Pauses or resumes the partition so it is paused exactly while held or holding a full batch. */
  private sync(buffer: FetchBuffer): void {
    const want = buffer.held || buffer.messages.length >= this.pauseAt;
    if (want === buffer.paused) return;
    buffer.paused = want;
    if (want) this.control.pause(buffer.partition);
    else this.control.resume(buffer.partition);
  }

  /** True when some buffer has messages and no running batch (what `nextReady` would find). */
  hasReady(): boolean {
    for (const buffer of this.buffers.values()) if (ready(buffer)) return true;
    return false;
  }

  /** The next buffer (round robin) with messages and no running batch. */
  nextReady(): FetchBuffer | undefined {
    const all = [...this.buffers.values()];
    for (let i = 0; i < all.length; i++) {
      const buffer = all[(this.cursor + i) % all.length] as FetchBuffer;
      if (ready(buffer)) {
        this.cursor = (this.cursor + i + 1) % all.length;
        return buffer;
      }
    }
    return undefined;
  }

  /** Takes the next batch (≤ maxBatch) of a ready buffer; the caller sets `running`. */
  take(buffer: FetchBuffer): RdKafka.Message[] {
    let batch: RdKafka.Message[];
    if (buffer.messages.length <= this.maxBatch) {
      batch = buffer.messages;
      buffer.messages = [];
    } else batch = buffer.messages.splice(0, this.maxBatch);
    this.running++;
    if (buffer.paused) this.sync(buffer);
    return batch;
  }

  /** Ends a buffer's running batch; `rewindFrom` (the batch's first offset) when it failed. */
  finish(buffer: FetchBuffer, rewindFrom: number | null): void {
    buffer.running = null;
    this.running--;
    if (rewindFrom === null || buffer.closed) return;
    buffer.rewindTo = rewindFrom;
    buffer.messages = [];
  }

  /** A buffer's state, for diagnostics (undefined when the partition is not assigned here). */
  describe(partition: number): Record<string, unknown> | undefined {
    const buffer = this.buffers.get(partition);
    if (buffer === undefined) return undefined;
    const { messages, running, ...rest } = buffer;
    return { ...rest, buffered: messages.length, running: running !== null };
  }

  /** Buffers waiting for their seek. */
  rewinding(): FetchBuffer[] {
    const out: FetchBuffer[] = [];
    for (const buffer of this.buffers.values()) if (buffer.rewindTo !== null && !buffer.closed) out.push(buffer);
    return out;
  }

  /** The owner has seeked the buffer back: accept from its rewind offset on. */
  rewound(buffer: FetchBuffer): void {
    buffer.expect = buffer.rewindTo ?? buffer.expect;
    buffer.from = buffer.rewindTo;
    buffer.rewindTo = null;
    if (buffer.paused) this.sync(buffer);
  }
}
