import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { DeliveryItem, DeliveryOutcome, PendingBatch } from './delivery-types.js';
import { PartitionQueue, type BatchingPolicy } from './batcher.js';
import { CommitPacer } from './commit-pacer.js';
import type { InboundMessage, MessageDecoder } from './sink-decode.js';
import { sleep } from './retry.js';

/**
 * The sink runner's delivery lane of one assigned partition: its queue of consumed-but-unsettled
 * records, the one batch being delivered (batches of a partition are delivered strictly one after
 * another, in offset order), its settled position and backpressure state. The runner creates a
 * lane on assignment and closes it on revocation; the lane asks its host to deliver, pause and
 * resume. (Not the consumer's fetch buffers, src/kafka/fetch-buffers.ts, which hold what was
 * fetched until it is handed over to the lane.)
 */

/** What the lane keeps of a consumed message until its batch is taken (the consumer's own object). */
export interface QueuedMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
}

export interface DeliveryLaneHost {
  readonly topic: string;
  readonly log: Logger;
  /** False while the runner re-positions partitions (SINK_STATE_LOST): no batch may start. */
  canStart(): boolean;
  /** Aborted when a stop's drain grace is over: a batch still waiting is abandoned unsettled. */
  readonly drainOver?: AbortSignal;
  deliver(batch: PendingBatch, lane: DeliveryLane): Promise<DeliveryOutcome>;
  pause(lane: DeliveryLane): void;
  resume(lane: DeliveryLane): void;
  /** The lane's batch ended unsettled in a way that needs re-positioning. */
  stateLost(lane: DeliveryLane): void;
  /** Something unexpected happened: re-read the partition from its settled position. */
  rewind(lane: DeliveryLane): void;
  settled(lane: DeliveryLane): void;
}

/** Wait after a write, as a multiple of what writes cost: a lane keeps its sink busy at most half the time. */
const SINK_PACE_RATIO = 1;
/** The longest wait between attempts at preparing a batch's decoding (the schema registry down). */
const PREPARE_MAX_BACKOFF_MS = 5000;

export class DeliveryLane {
  /** Consumed messages as the consumer handed them, decoded only when their batch is taken. */
  readonly queue: PartitionQueue<QueuedMessage>;
  /** Next offset to settle (everything before it is written or parked in the DLQ). */
  nextOffset: string;
  /** Smallest offset accepted from the consumer (guards against re-delivered messages). */
  private expectFrom: number;
  highWatermark: string | null = null;
  paused = false;
  draining = false;
  /** Set when the partition is being revoked or the runner stops: no new batch starts. */
  closing = false;
  lastWriteAt: number | null = null;
  /**
   * Records below this offset were settled once already and are read again because the sink lost
   * its state (a Redis wipe's rebuild): written again, but not observed as freshness.
   */
  rereadBelow = 0n;
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  /** Paces this partition's writes by their cost when the policy is `paced`. */
  private readonly pacer: CommitPacer | undefined;

  constructor(
    readonly partition: number,
    startOffset: string,
    policy: BatchingPolicy,
    private readonly host: DeliveryLaneHost,
    private readonly decode: MessageDecoder,
  ) {
    const pacer = policy.paced ? new CommitPacer({ ratio: SINK_PACE_RATIO, maxGapMs: policy.maxWaitMs }) : undefined;
    this.pacer = pacer;
    this.queue = new PartitionQueue<QueuedMessage>(policy, Date.now, pacer ? () => pacer.waitMs() : undefined);
    this.nextOffset = startOffset;
    this.expectFrom = Number(startOffset);
  }

  get busy(): boolean {
    return this.running !== null;
  }

  lag(): number {
    if (this.highWatermark === null) return 0;
    return Math.max(0, Number(BigInt(this.highWatermark) - BigInt(this.nextOffset)));
  }

  /** Queues consumed messages (skipping any already queued); returns how many. */
  enqueue(messages: readonly QueuedMessage[]): number {
    if (this.closing) return 0;
    const items: QueuedMessage[] = [];
    for (const m of messages) {
      // Numbers are exact for offsets below 2^53 (centuries at a million records a second).
      const offset = Number(m.offset);
      if (offset < this.expectFrom) continue;
      this.expectFrom = offset + 1;
      items.push(m);
    }
    this.queue.push(items);
    if (!this.paused && this.queue.full()) this.host.pause(this);
    this.kick();
    return items.length;
  }

  /** Starts delivering if a batch is due (by size, time, or because the lane drains). */
  kick(): void {
    if (this.running || this.closing) return;
    if (!this.host.canStart()) return;
    if (!this.queue.ready(this.draining)) {
      this.arm();
      return;
    }
    this.disarm();
    const run = this.loop();
    this.running = run;
    void run.finally(() => {
      if (this.running === run) this.running = null;
    });
  }

  private async loop(): Promise<void> {
    let after: 'kick' | 'state-lost' | 'rewind' | 'stop' = 'kick';
    try {
      while (!this.closing && this.host.canStart() && this.queue.ready(this.draining)) {
        const messages = this.queue.take();
        const last = messages[messages.length - 1];
        if (!last) break;
        const { topic } = this.host;
        const partition = this.partition;
        const inbound = messages.map((m) => ({ topic, partition, offset: m.offset, key: m.key, value: m.value }));
        if (this.decode.prepare && !(await this.prepare(inbound))) {
          after = 'stop';
          break;
        }
        const items: DeliveryItem[] = inbound.map((m) => ({ offset: m.offset, decoded: this.decode(m) }));
        const batch: PendingBatch = {
          topic: this.host.topic,
          partition: this.partition,
          items,
          nextOffset: (BigInt(last.offset) + 1n).toString(),
        };
        const startedAt = this.pacer?.started() ?? 0;
        const outcome = await this.host.deliver(batch, this);
        this.pacer?.ended(startedAt);
        if (outcome.kind === 'state-lost') {
          after = 'state-lost';
          break;
        }
        if (outcome.kind === 'abandoned') {
          after = 'stop';
          break;
        }
        this.nextOffset = batch.nextOffset;
        this.lastWriteAt = Date.now();
        this.host.settled(this);
        if (this.paused && this.queue.drained()) this.host.resume(this);
      }
    } catch (err) {
      this.host.log.error(
        { err: errorMessage(err), partition: this.partition },
        'batch delivery failed unexpectedly; re-reading the partition from its settled offset',
      );
      after = 'rewind';
    }
    this.running = null;
    if (after === 'state-lost') this.host.stateLost(this);
    else if (after === 'rewind') this.host.rewind(this);
    else if (after === 'kick') this.kick();
  }

  /**
   * The decoder's preparation of a batch (an Avro decoder's schemas), retried while it fails and
   * the lane is open: the registry down is an outage, waited out like a sink's. False once closing
   * (or a stop's drain grace is over: the batch is then left unsettled, read again by the next run).
   */
  private async prepare(messages: readonly InboundMessage[]): Promise<boolean> {
    const over = this.host.drainOver;
    for (let attempt = 1; !this.closing && !over?.aborted; attempt++) {
      try {
        await this.decode.prepare?.(messages);
        return true;
      } catch (err) {
        this.host.log.warn(
          { err: errorMessage(err), partition: this.partition, attempt },
          'cannot decode the batch yet; retrying',
        );
        await sleep(Math.min(PREPARE_MAX_BACKOFF_MS, 200 * attempt), over).catch(() => undefined);
      }
    }
    return false;
  }

  /**
   * Settles the offsets from `nextOffset` up to `offset` that hold no record for this reader
   * (transaction markers, aborted records: the consumer skipped them), when everything received is
   * settled and nothing is queued or being delivered. Returns whether `nextOffset` moved.
   */
  skipTo(offset: number): boolean {
    if (this.running || this.closing || this.queue.size > 0) return false;
    if (Number(this.nextOffset) !== this.expectFrom || offset <= this.expectFrom) return false;
    this.nextOffset = String(offset);
    this.expectFrom = offset;
    return true;
  }

  /** Forgets everything queued and continues from `offset` (after a seek to it). */
  reset(offset: string): void {
    this.disarm();
    this.queue.clear();
    this.nextOffset = offset;
    this.expectFrom = Number(offset);
  }

  /** Resolves once no batch is being delivered (with `draining`, once the queue is empty too). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops taking batches: queued records are dropped unsettled (the next owner re-reads them). */
  close(): void {
    this.closing = true;
    this.disarm();
    this.queue.clear();
  }

  private arm(): void {
    if (this.timer || this.closing) return;
    const due = this.queue.dueInMs();
    if (due === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, due);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
