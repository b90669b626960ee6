import { errorMessage, isRetriable, toPipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Sink } from '../core/sink-contract.js';
import type { BatchConsumer } from '../kafka/batch-consumer.js';
import { isTransientKafkaError, type Admin } from '../kafka/client.js';
import { deliverBatch, type DeliveryContext } from './batch-delivery.js';
import type { BatchingPolicy } from './batcher.js';
import { CommitTracker } from './commit-tracker.js';
import type { DeliveryLane, DeliveryLaneHost } from './delivery-lane.js';
import type { DlqWriter } from './dlq-writer.js';
import { resolveStartOffsets, type StartOffsets } from './offsets.js';
import { retry, type RetryPolicy } from './retry.js';
import type { Semaphore } from './semaphore.js';
import type { MessageDecoder } from './sink-decode.js';
import type { SinkMetrics } from './sink-metrics.js';
import type { SinkRunnerOptions } from './sink-runner-options.js';
import type { RunnerStats } from './sink-runner-stats.js';
import { resync } from './sink-runner-resync.js';

/**
 * The state one sink runner's pieces share (sink-runner.ts wires them): what is fixed at start
 * (`setup`), the delivery lanes of the partitions assigned here, the clients once connected, and
 * the flags the callbacks read — `stopping` once `stop` began, `resyncing` while every partition
 * is re-positioned after SINK_STATE_LOST (no batch starts meanwhile). One JS thread reads and
 * writes it; every piece reads the flags here, at the moment it acts, never a copy.
 */

/** What is resolved once before the runner starts and never changes. */
export interface RunnerSetup {
  readonly name: string;
  readonly topic: string;
  readonly groupId: string;
  readonly stage: string;
  readonly policy: BatchingPolicy;
  readonly retryPolicy: RetryPolicy;
  readonly log: Logger;
  readonly metrics: SinkMetrics;
  readonly stats: RunnerStats;
  readonly writeLock: Semaphore;
  readonly sink: Sink;
  readonly decoder: MessageDecoder;
  readonly opts: SinkRunnerOptions;
}

/** Reading start offsets outlasts a broker's loss (a leader election, up to ~20 s measured under
 *  load): each call waits on the brokers up to its own timeout, and Kafka's transient errors are
 *  retried as well as the sink's retriable ones. */
const POSITION_RETRY = {
  attempts: 10,
  baseMs: 200,
  maxMs: 5000,
  jitter: 'full',
  shouldRetry: (err: unknown) => isRetriable(err) || isTransientKafkaError(err),
} as const;

export class SinkRunnerState {
  readonly lanes = new Map<number, DeliveryLane>();
  stopping = false;
  resyncing: Promise<void> | null = null;
  consumer: BatchConsumer | undefined;
  /** Set once connected, before the consumer exists (nothing reads it earlier). */
  admin!: Admin;
  /** Set once connected, before the consumer exists (nothing delivers earlier). */
  dlq!: DlqWriter;
  /** Aborted when a stop's drain grace period is over: batches still failing are abandoned unsettled. */
  readonly drainOver = new AbortController();
  readonly commits: CommitTracker;
  /** What every delivery lane asks of the runner: deliver a batch, pause, resume, re-position. */
  readonly host: DeliveryLaneHost;

  constructor(
    readonly setup: RunnerSetup,
    private readonly failDone: (err: Error) => void,
  ) {
    const { metrics, log } = setup;
    this.commits = new CommitTracker(
      () => this.consumer,
      log,
      () => metrics.errors.inc(),
    );
    this.host = this.createHost();
  }

  /** A fatal error: counted, logged, and `done` rejects (the component should then stop). */
  fail(err: unknown): void {
    const e = toPipelineError(err);
    this.setup.stats.error(e);
    this.setup.log.error({ code: e.code, err: e.message }, 'sink runner failed');
    this.failDone(e);
  }

  updateLag(): void {
    this.setup.metrics.lag.set(this.setup.stats.lag(this.lanes));
  }

  pausePartition(partition: number, pause: boolean): void {
    this.consumer?.hold(partition, pause);
  }

  /** Re-positions a lane and its partition at `offset` (queued records dropped, re-read from there). */
  seekLane(lane: DeliveryLane, offset: string): void {
    lane.reset(offset);
    this.consumer?.seek(lane.partition, Number(offset));
    if (lane.paused) this.host.resume(lane);
  }

  /** Where each of `partitions` starts (offsets.ts), retried a few times before it fails. */
  positions(partitions: number[]): Promise<StartOffsets> {
    const { sink, groupId, topic, opts, log } = this.setup;
    return retry(
      () => resolveStartOffsets(sink, this.admin, groupId, topic, partitions, opts.fallbackStart ?? 'sink'),
      {
        ...POSITION_RETRY,
        onRetry: (err, attempt) =>
          log.warn({ err: errorMessage(err), attempt }, 'could not read start offsets; retrying'),
      },
    );
  }

  private createHost(): DeliveryLaneHost {
    const { topic, log, sink, stage, metrics, retryPolicy, writeLock, stats } = this.setup;
    return {
      topic,
      log,
      canStart: () => this.resyncing === null,
      drainOver: this.drainOver.signal,
      deliver: async (batch, lane) => {
        const ctx: DeliveryContext = {
          sink,
          stage,
          dlq: this.dlq,
          metrics,
          log,
          retryPolicy,
          writeLock,
          owned: () => !lane.closing && !this.drainOver.signal.aborted,
          signal: this.drainOver.signal,
          onError: (e) => stats.error(e),
          commit: (_topic, partition, offset) => this.commits.commit(partition, offset),
          isReread: (offset) => BigInt(offset) < lane.rereadBelow,
        };
        const outcome = await deliverBatch(ctx, batch);
        stats.delivered(outcome);
        return outcome;
      },
      pause: (lane) => {
        lane.paused = true;
        stats.pauses++;
        this.pausePartition(lane.partition, true);
      },
      resume: (lane) => {
        lane.paused = false;
        this.pausePartition(lane.partition, false);
      },
      stateLost: () => void resync(this),
      rewind: (lane) => this.seekLane(lane, lane.nextOffset),
      settled: () => this.updateLag(),
    };
  }
}
