import { performance } from 'node:perf_hooks';
import { RdKafka } from '@confluentinc/kafka-javascript';
import { errorMessage } from '../core/errors.js';
import { sleep } from '../core/sleep.js';
import type { BatchConsumerOptions, BatchHandler, KafkaMessage, PartitionBatch } from './batch-types.js';
import { commitStoredOffsets, consumerProps, returnOnFirstMessage, type TopicPartition } from './consumer-props.js';
import { FetchBuffers } from './fetch-buffers.js';
import { groupViewOf, type GroupView } from './assignment-watch.js';
import { FetchProbe, librdkafkaView } from './fetch-probe.js';
import type { FetchStall } from './fetch-stall.js';

export type { BatchConsumerOptions, BatchHandler, KafkaMessage, PartitionBatch } from './batch-types.js';

/**
 * A consumer-group member that hands over batches of one partition at a time, on librdkafka's
 * plain consumer (`consume(n)` in rounds, manual assignment in `rebalance_cb`), for
 * consume-transform-produce loops that commit offsets themselves (in a Kafka transaction:
 * `groupClient` is what `sendOffsetsToTransaction` needs for the group metadata, KIP-447).
 * read_committed by default; no auto-commit unless `commitIntervalMs` (then of the offsets stored
 * with `storeOffset` only).
 *
 * Contract:
 * - `run(handler)`: the handler gets batches of ≤ `maxBatch` messages of one partition, in offset
 *   order; one batch per partition at a time, at most `concurrency` at once. It resolves once the
 *   batch's offsets are committed (by the handler), or rejects: the partition is then rewound to
 *   the batch's first offset and re-read.
 * - Backpressure: a partition holding a full batch is paused until it is taken, so at most
 *   maxBatch (+ one consume round) messages per partition wait here, besides the running batch and
 *   librdkafka's bounded prefetch.
 * - Rebalance: on assign, the partitions start at their committed offsets; on revoke, nothing new
 *   starts for them, running batches of them settle, then `onRevoke` is awaited, and only then are
 *   they given up — so in-flight work commits under the generation that owned it.
 * - `stop()`: nothing new starts, running batches settle, the member leaves the group.
 * - For owners that keep their own per-partition state (the sink runner): `startOffsets` positions
 *   assigned partitions explicitly, `hold` pauses a partition for the owner's backpressure (besides
 *   the buffers' own), `seek` re-positions one between consume calls (nothing fetched from before
 *   it is handed over after it), `storeOffset`/`commitStored` commit group offsets outside any
 *   transaction (with `commitIntervalMs`).
 * - `fetchStalls()`: partitions fetching nothing while the broker holds committed records past
 *   them, for the owner's restart (fetch-probe.ts, `watchFetch`).
 */

type RawConsumer = InstanceType<typeof RdKafka.KafkaConsumer>;

/**
 * Messages per consume call. The binding turns each into a JS object on the JS thread (~5–6 µs),
 * so a round holds that thread for CONSUME_MAX of them, and responses to writes in flight wait
 * behind it: at 5,000 the external sink (two short POSTs in flight) drained at about half the rate
 * it does at 1,000 (docs/benchmarks.md, 2026-11-28).
 */
const CONSUME_MAX = 1000;
const CONSUME_TIMEOUT_MS = 100;
const ERR_ASSIGN = -175;
const ERR_REVOKE = -174;
const OP_TIMEOUT_MS = 10000;
/**
 * Longest time the loop goes without a consume call while its buffer is full: rebalance events
 * are served inside consume calls, and librdkafka leaves the group after max.poll.interval.ms
 * (300 s) without one, so a long stall (a content wait, failing commits) still polls this often.
 */
const MAX_POLL_GAP_MS = 1000;

export class BatchConsumer {
  private readonly buffers: FetchBuffers;
  private handler: BatchHandler | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private rebalancing: Promise<void> = Promise.resolve();
  /** Rebalance events received and not yet applied (a stuck one stops consumption). */
  private rebalancePending = 0;
  /** When each pending rebalance event was received (performance.now()), oldest first. */
  private readonly rebalanceReceived: number[] = [];
  /** The member's view of its group from librdkafka's latest statistics (assignment-watch.ts). */
  private group: GroupView | null = null;
  /** When the last consume round returned (performance.now()). */
  private lastFetchAt = 0;
  /** Wakes the consume loop waiting for room (maxBuffered). */
  private wakeLoop: (() => void) | undefined;
  private readonly fetchProbe: FetchProbe;

  private constructor(
    private readonly opts: BatchConsumerOptions,
    private readonly consumer: RawConsumer,
  ) {
    this.buffers = new FetchBuffers(
      opts.topic,
      opts.maxBatch,
      {
        pause: (p) => this.pauseResume(p, true),
        resume: (p) => this.pauseResume(p, false),
      },
      opts.pauseAt ?? opts.maxBatch,
    );
    this.fetchProbe = new FetchProbe(consumer, opts.topic, opts.log);
  }

  /** Connects (no group join yet: that starts with `run`). */
  static async connect(opts: BatchConsumerOptions): Promise<BatchConsumer> {
    let self: BatchConsumer | undefined;
    const consumer = new RdKafka.KafkaConsumer(
      consumerProps(opts, {
        onRebalance: (code, assignment) => self?.onRebalance(code, assignment),
      }),
    );
    consumer.on('event.error', (err) => opts.log.warn({ err: err.message, code: err.code }, 'consumer error'));
    consumer.on('event.stats', (stats: { message: string }) => {
      if (self) self.group = groupViewOf(stats.message, Date.now()) ?? self.group;
    });
    await new Promise<void>((resolve, reject) =>
      consumer.connect({ timeout: OP_TIMEOUT_MS }, (err) => (err ? reject(err) : resolve())),
    );
    consumer.setDefaultConsumeTimeout(CONSUME_TIMEOUT_MS);
    returnOnFirstMessage(consumer);
    self = new BatchConsumer(opts, consumer);
    return self;
  }

  /** The librdkafka consumer whose group metadata fences transactional offsets (KIP-447). */
  get groupClient(): RawConsumer {
    return this.consumer;
  }

  assigned(): number[] {
    return this.buffers.partitions();
  }

  /** The group as this member last saw it (librdkafka statistics), or null before the first. */
  groupView(): GroupView | null {
    return this.group;
  }

  /** How long the oldest rebalance event received and not yet applied has waited (0: none). */
  rebalanceWaitMs(): number {
    const oldest = this.rebalanceReceived[0];
    return oldest === undefined ? 0 : performance.now() - oldest;
  }

  /** Joins the group and starts handing over batches. */
  run(handler: BatchHandler): void {
    this.handler = handler;
    this.consumer.subscribe([this.opts.topic]);
    this.loop = this.consumeLoop();
  }

  /** Stops taking batches, lets running ones settle, leaves the group and disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    await this.buffers.settled(this.buffers.partitions());
    await this.rebalancing;
    await new Promise<void>((resolve) => this.consumer.disconnect(() => resolve()));
    await this.rebalancing;
  }

  /** Pauses (`on`) or resumes a partition for the owner's backpressure. */
  hold(partition: number, on: boolean): void {
    this.buffers.hold(partition, on);
  }

  /** Re-positions a partition: what it holds is dropped, the next batch starts at `offset`. */
  seek(partition: number, offset: number): void {
    this.buffers.reposition(partition, offset);
  }

  /**
   * One partition's state as this consumer sees it, for a stall report: its buffer (what it holds,
   * whether paused or waiting for a seek), whether librdkafka has it assigned, and its position.
   */
  describe(partition: number): Record<string, unknown> {
    return {
      fetchBuffer: this.buffers.describe(partition) ?? null,
      ...librdkafkaView(this.consumer, this.opts.topic, partition),
      rebalancePending: this.rebalancePending,
    };
  }

  /**
   * The partitions found, just now, fetching nothing while the broker holds committed records past
   * their position (fetch-probe.ts: asks the broker at most every 15 s, once some partition has
   * fetched nothing for 15 s). None while a rebalance is pending (the assignment watch's case).
   */
  fetchStalls(): Promise<FetchStall[]> {
    return this.fetchProbe.check(this.rebalancePending > 0 ? [] : this.buffers.fetchViews());
  }

  /**
   * Stores a partition's next offset for the periodic commit (`commitIntervalMs`); synchronous and
   * local. Throws if the partition is not assigned to this member (any more).
   */
  storeOffset(partition: number, offset: number): void {
    this.consumer.offsetsStore([{ topic: this.opts.topic, partition, offset }]);
  }

  /**
   * Commits the stored offsets now. Resolves once librdkafka has queued the commit, not once the
   * broker answered: commits reach the group coordinator in order and before a later re-join (so
   * before the next owner reads them); the answer arrives in `offset_commit_cb`, which logs a
   * failure. Resolves at once if nothing new is stored.
   */
  commitStored(): Promise<void> {
    return commitStoredOffsets(this.consumer);
  }

  private async consumeLoop(): Promise<void> {
    while (!this.stopping) {
      await this.rebalancing;
      await this.applyRewinds();
      if (this.bufferFull()) {
        await this.roomOrTimeout();
        continue;
      }
      let messages: KafkaMessage[];
      try {
        messages = await new Promise<KafkaMessage[]>((resolve, reject) =>
          this.consumer.consume(CONSUME_MAX, (err, m) => (err ? reject(err) : resolve(m))),
        );
      } catch (err) {
        if (this.stopping) break;
        this.opts.log.warn({ err: errorMessage(err) }, 'consume failed; retrying');
        await sleep(500);
        continue;
      }
      this.lastFetchAt = performance.now();
      for (let i = 0; i < messages.length; i++) this.buffers.add(messages[i] as KafkaMessage, this.lastFetchAt);
      this.dispatch();
      this.reportCaughtUp();
    }
  }

  /** `onCaughtUp` for the idle partitions; runs right after a round (the position is the round's). */
  private reportCaughtUp(): void {
    const report = this.opts.onCaughtUp;
    const idle = report ? this.buffers.idle() : [];
    if (report === undefined || idle.length === 0) return;
    let positions: TopicPartition[];
    try {
      positions = this.consumer.position(idle.map((partition) => ({ topic: this.opts.topic, partition })));
    } catch {
      return; // not connected (any more)
    }
    for (const tp of positions as Array<TopicPartition & { offset?: number }>) {
      if (typeof tp.offset === 'number' && tp.offset >= 0)
        report(tp.partition, tp.offset, this.highWatermark(tp.partition));
    }
  }

  /**
   * True while the buffers hold `maxBuffered` messages or more — unless a batch could start and no
   * buffer has one ready (the messages held belong to partitions whose batch is running): polling
   * then goes on, bounded by `pauseAt` per partition, so an idle slot is not left without work —
   * and at least every MAX_POLL_GAP_MS whatever the buffer holds.
   */
  private bufferFull(): boolean {
    if (this.buffers.buffered() < (this.opts.maxBuffered ?? Number.POSITIVE_INFINITY)) return false;
    if (performance.now() - this.lastFetchAt >= MAX_POLL_GAP_MS) return false;
    return this.buffers.running >= this.opts.concurrency || this.buffers.hasReady();
  }

  /** Resolves once a batch is taken or CONSUME_TIMEOUT_MS passed. */
  private roomOrTimeout(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wakeLoop = undefined;
        resolve();
      }, CONSUME_TIMEOUT_MS);
      this.wakeLoop = () => {
        clearTimeout(timer);
        this.wakeLoop = undefined;
        resolve();
      };
    });
  }

  /** Starts a batch on every idle buffer with messages, up to `concurrency` running. */
  private dispatch(): void {
    if (this.stopping || this.handler === undefined) return;
    this.wakeLoop?.();
    for (;;) {
      if (this.buffers.running >= this.opts.concurrency) return;
      const buffer = this.buffers.nextReady();
      if (buffer === undefined) return;
      const messages = this.buffers.take(buffer);
      const last = messages[messages.length - 1] as KafkaMessage;
      // Only the first offset is kept past the hand-over: the handler may let the messages go early.
      const firstOffset = (messages[0] as KafkaMessage).offset;
      const batch: PartitionBatch = {
        topic: this.opts.topic,
        partition: buffer.partition,
        messages,
        nextOffset: last.offset + 1,
        highWatermark: this.highWatermark(buffer.partition),
        fetchedAt: this.lastFetchAt,
      };
      buffer.running = this.handler(batch)
        .then(
          () => this.buffers.finish(buffer, null),
          () => this.buffers.finish(buffer, this.stopping ? null : firstOffset),
        )
        .then(() => this.dispatch());
    }
  }

  private highWatermark(partition: number): number {
    try {
      return this.consumer.getWatermarkOffsets(this.opts.topic, partition).highOffset;
    } catch {
      return Number.NaN;
    }
  }

  /** Seeks rewound buffers back; runs between consume calls, so no pre-seek message is handed over after it. */
  private async applyRewinds(): Promise<void> {
    for (const buffer of this.buffers.rewinding()) {
      const offset = buffer.rewindTo as number;
      try {
        await new Promise<void>((resolve, reject) =>
          this.consumer.seek({ topic: this.opts.topic, partition: buffer.partition, offset }, OP_TIMEOUT_MS, (err) =>
            err ? reject(err) : resolve(),
          ),
        );
        this.buffers.rewound(buffer);
      } catch (err) {
        this.opts.log.warn({ err: errorMessage(err), partition: buffer.partition, offset }, 'seek failed; retrying');
      }
    }
  }

  private pauseResume(partition: number, pause: boolean): void {
    try {
      const tp = [{ topic: this.opts.topic, partition }];
      if (pause) this.consumer.pause(tp);
      else this.consumer.resume(tp);
    } catch (err) {
      this.opts.log.debug({ err: errorMessage(err), partition }, 'pause/resume ignored');
    }
  }

  private onRebalance(code: number, assignment: TopicPartition[]): void {
    const ids = assignment.map((tp) => tp.partition);
    const previous = this.rebalancing;
    this.rebalancePending++;
    this.rebalanceReceived.push(performance.now());
    this.rebalancing = previous
      .then(() => this.applyRebalance(code, assignment, ids))
      .catch((err: unknown) =>
        this.opts.log.warn({ err: errorMessage(err), code, partitions: ids }, 'rebalance handling failed'),
      )
      .finally(() => {
        this.rebalancePending--;
        this.rebalanceReceived.shift();
      });
  }

  private async applyRebalance(code: number, assignment: TopicPartition[], ids: number[]): Promise<void> {
    if (code === ERR_ASSIGN) {
      const start = await this.opts.startOffsets?.(ids);
      // A failed assign leaves librdkafka waiting for one: the assignment watch (assignment-watch.ts)
      // turns that into an exit once it has lasted, so it is logged where a person looks.
      try {
        this.consumer.assign(
          start
            ? assignment.map((tp) => ({
                ...tp,
                ...(start.has(tp.partition) ? { offset: start.get(tp.partition) } : {}),
              }))
            : assignment,
        );
      } catch (err) {
        this.opts.log.warn(
          { err: errorMessage(err), partitions: ids },
          'assign failed; the group will not hand these partitions over until it is retried',
        );
        throw err;
      }
      for (const p of ids) this.buffers.open(p, performance.now(), start?.get(p) ?? null);
      this.opts.onAssign?.(ids);
      return;
    }
    if (code !== ERR_REVOKE) {
      this.opts.log.warn({ code }, 'unexpected rebalance event');
      return;
    }
    // Settle what was handed over for these partitions while the generation is still ours.
    this.buffers.close(ids);
    await this.buffers.settled(ids);
    await this.opts
      .onRevoke?.(ids)
      .catch((err: unknown) => this.opts.log.warn({ err: errorMessage(err) }, 'revoke handler failed'));
    try {
      this.consumer.unassign();
    } catch (err) {
      if (this.stopping) this.opts.log.debug({ err: errorMessage(err) }, 'unassign ignored (consumer closing)');
      else this.opts.log.warn({ err: errorMessage(err), partitions: ids }, 'unassign failed');
    }
    this.buffers.remove(ids);
  }
}
