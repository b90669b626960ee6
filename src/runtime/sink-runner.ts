import type { Config } from '../config/load.js';
import { errorMessage, PipelineError, toPipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { ensureTopics } from '../kafka/admin.js';
import { BatchConsumer, type PartitionBatch } from '../kafka/batch-consumer.js';
import { AssignmentWatch } from '../kafka/assignment-watch.js';
import { createKafka, type Admin } from '../kafka/client.js';
import type { Sink, SinkFactory } from '../core/sink-contract.js';
import { deliverBatch, type DeliveryContext } from './batch-delivery.js';
import { CommitTracker } from './commit-tracker.js';
import { createDlqWriter, type DlqWriter } from './dlq-writer.js';
import type { RunningComponent } from './lifecycle.js';
import { resolveStartOffsets } from './offsets.js';
import { DeliveryLane, type DeliveryLaneHost, type QueuedMessage } from './delivery-lane.js';
import { retry } from './retry.js';
import { Semaphore } from './semaphore.js';
import { StallWatch } from './stall-watch.js';
import { pollSinkHealth, type HealthPoll } from './health-poll.js';
import { decodeEncodedMessage } from './encoded-record.js';
import { decodeEnrichedMessage } from './sink-decode.js';
import { sinkMetrics } from './sink-metrics.js';
import { resolveBatching, resolveRetryPolicy, resolveWriteConcurrency, sinkGroupId, type SinkRunnerOptions } from './sink-runner-options.js';
import { RunnerStats, type SinkRunnerSnapshot } from './sink-runner-stats.js';

export type { SinkRunnerOptions } from './sink-runner-options.js';
export type { SinkRunnerSnapshot, PartitionSnapshot } from './sink-runner-stats.js';

/**
 * Drives one sink: a Kafka consumer of its own group (BatchConsumer: librdkafka's plain consumer,
 * read_committed, no auto-commit) feeding
 * per-partition delivery lanes (delivery-lane.ts) that batch by size and time, deliver through batch-delivery.ts (check → DLQ
 * confirmed → write with retries → commit), pause their partition when their queue is full and
 * resume it once drained. On assignment each partition is positioned explicitly (offsets.ts); on
 * revocation the in-flight batch finishes (and commits) and the queued rest is dropped for the next
 * owner to re-read; a SINK_STATE_LOST re-positions every partition. `stop` drains: it stops
 * consuming, writes what is queued, commits, disconnects and closes the sink.
 */

export interface SinkRunner extends RunningComponent {
  /** Resolves when stopped; rejects on a fatal error (the component should then stop). */
  done: Promise<void>;
  status(): Record<string, unknown>;
  snapshot(): SinkRunnerSnapshot;
}

const POSITION_RETRY = { attempts: 6, baseMs: 200, maxMs: 5000, jitter: 'full' } as const;
/** `sink.start()` failing retriably (the system down, its file locked): tried again without bound. */
const START_RETRY = { attempts: Number.MAX_SAFE_INTEGER, baseMs: 500, maxMs: 10_000, jitter: 'full' } as const;
const DRAIN_GRACE_MS = 10_000;
/** How often settled offsets reach the group (commit-tracker.ts): the staleness of the group's
 *  committed lag, and what a crash may re-deliver (skipped by the sink, deduped by the system). */
const OFFSET_COMMIT_INTERVAL_MS = 1000;
/** A partition with lag, no batch in flight and no progress for this long (at least twice the
 *  batching wait, during which a partial batch legitimately waits) is reported (warn). */
const STALL_REPORT_MS = 30_000;

export async function startSinkRunner(config: Config, factory: SinkFactory, log: Logger, opts: SinkRunnerOptions = {}): Promise<SinkRunner> {
  const name = factory.name;
  const topic = opts.topic ?? config.KAFKA_TOPIC_ENRICHED;
  const groupId = opts.groupId ?? sinkGroupId(config, name);
  const stage = opts.stage ?? `sink:${name}`;
  const policy = resolveBatching(config, factory, opts);
  const retryPolicy = resolveRetryPolicy(config, factory, opts);
  const slog = log.child({ sink: name, topic });
  const metrics = sinkMetrics(name);
  const stats = new RunnerStats(name, groupId, topic);
  const writeLock = new Semaphore(resolveWriteConcurrency(config, factory, opts));

  await ensureTopics(config);
  const cleanup: Array<() => Promise<void>> = [];
  const sink: Sink = factory.create({ config, log: slog });
  // A sink with a fast path for undecoded batches gets them undecoded (encoded-record.ts).
  const decoder = opts.decoder ?? (sink.writeEncoded ? decodeEncodedMessage : decodeEnrichedMessage);
  // Reported from the start (0) for a sink that has the fast path, so a declined rate is defined.
  if (sink.writeEncoded) for (const c of Object.values(metrics.fastPath)) c.inc(0);
  let admin: Admin;
  let dlq: DlqWriter;
  let consumer: BatchConsumer | undefined;
  const lanes = new Map<number, DeliveryLane>();
  let stopping = false;
  let resyncing: Promise<void> | null = null;
  let failDone: (err: Error) => void = () => undefined;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    failDone = reject;
  });
  done.catch(() => undefined);
  const fail = (err: unknown) => {
    const e = toPipelineError(err);
    stats.error(e);
    slog.error({ code: e.code, err: e.message }, 'sink runner failed');
    failDone(e);
  };

  const commits = new CommitTracker(() => consumer, slog, () => metrics.errors.inc());
  const updateLag = () => metrics.lag.set(stats.lag(lanes));
  const pausePartition = (partition: number, pause: boolean) => consumer?.hold(partition, pause);
  const seekLane = (lane: DeliveryLane, offset: string) => {
    lane.reset(offset);
    consumer?.seek(lane.partition, Number(offset));
    if (lane.paused) host.resume(lane);
  };

  const host: DeliveryLaneHost = {
    topic,
    log: slog,
    canStart: () => resyncing === null,
    deliver: async (batch, lane) => {
      const ctx: DeliveryContext = {
        sink,
        stage,
        dlq,
        metrics,
        log: slog,
        retryPolicy,
        writeLock,
        owned: () => !lane.closing && !drainOver.signal.aborted,
        signal: drainOver.signal,
        onError: (e) => stats.error(e),
        commit: (_topic, partition, offset) => commits.commit(partition, offset),
        isReread: (offset) => BigInt(offset) < lane.rereadBelow,
      };
      const outcome = await deliverBatch(ctx, batch);
      stats.delivered(outcome);
      return outcome;
    },
    pause: (lane) => {
      lane.paused = true;
      stats.pauses++;
      pausePartition(lane.partition, true);
    },
    resume: (lane) => {
      lane.paused = false;
      pausePartition(lane.partition, false);
    },
    stateLost: () => void resync(),
    rewind: (lane) => seekLane(lane, lane.nextOffset),
    settled: () => updateLag(),
  };

  const positions = (partitions: number[]) =>
    retry(() => resolveStartOffsets(sink, admin, groupId, topic, partitions, opts.fallbackStart ?? 'sink'), {
      ...POSITION_RETRY,
      onRetry: (err, attempt) => slog.warn({ err: errorMessage(err), attempt }, 'could not read start offsets; retrying'),
    });

  /** SINK_STATE_LOST: wait for in-flight batches, ask the sink where to resume, seek everything. */
  const resync = (): Promise<void> => {
    if (resyncing) return resyncing;
    stats.stateLost++;
    metrics.stateLost.inc();
    slog.warn('the sink reports its state lost: re-positioning every assigned partition from the sink');
    resyncing = (async () => {
      await Promise.all([...lanes.values()].map((l) => l.idle()));
      const parts = [...lanes.keys()];
      const start = await positions(parts);
      for (const [p, offset] of start.offsets) {
        const lane = lanes.get(p);
        if (!lane || lane.closing) continue;
        const settled = BigInt(lane.nextOffset);
        if (settled > lane.rereadBelow) lane.rereadBelow = settled;
        seekLane(lane, offset);
      }
      slog.info({ offsets: Object.fromEntries(start.offsets) }, 're-positioned after state loss');
    })()
      .catch(fail)
      .finally(() => {
        resyncing = null;
        for (const lane of lanes.values()) lane.kick();
      });
    return resyncing;
  };

  const onAssign = async (mine: number[]): Promise<Map<number, number> | undefined> => {
    try {
      const start = await positions(mine);
      for (const p of mine) lanes.set(p, new DeliveryLane(p, start.offsets.get(p) ?? '0', policy, host, decoder));
      slog.info({ offsets: Object.fromEntries(start.offsets), sources: Object.fromEntries(start.sources) }, 'partitions assigned');
      return new Map([...start.offsets].map(([p, o]) => [p, Number(o)]));
    } catch (err) {
      fail(new PipelineError('SERVICE_UNREACHABLE', `cannot position partitions ${mine.join(', ')}: ${errorMessage(err)}`, { cause: err }));
      return undefined;
    }
  };

  const onRevoke = async (mine: number[]): Promise<void> => {
    const revoked = mine.map((p) => lanes.get(p)).filter((l): l is DeliveryLane => l !== undefined);
    for (const lane of revoked) {
      lane.close();
      if (lane.paused) host.resume(lane);
    }
    await Promise.all(revoked.map((l) => l.idle()));
    // A stop has flushed already, after its drain: leaving the group revokes with the consumer closing.
    if (!stopping) await commits.flush();
    for (const lane of revoked) if (lanes.get(lane.partition) === lane) lanes.delete(lane.partition);
    slog.info({ partitions: mine }, 'partitions revoked');
    updateLag();
  };

  // An idle partition of a transactional topic ends on a marker: settled, so the lag can reach 0
  // and the group's offset the high watermark. Not in a bounded run: past its ends the consumer's
  // position may cover records the runner left alone.
  const onCaughtUp = (partition: number, position: number): void => {
    const lane = lanes.get(partition);
    if (ends || stopping || resyncing || !lane?.skipTo(position)) return;
    commits.commit(partition, lane.nextOffset);
    updateLag();
  };

  const ends = opts.endOffsets ? new Map([...opts.endOffsets].map(([p, o]) => [p, Number(o)])) : undefined;
  // The runner owns the handed-over messages from here on (queued, or deliberately dropped and re-read).
  const onBatch = async (batch: PartitionBatch): Promise<void> => {
    if (stopping) return;
    const lane = lanes.get(batch.partition);
    if (!lane) return;
    // A full lane (paused) takes nothing more: the partition is re-read from here once it resumes,
    // so at most one hand-over batch lands on top of the pause threshold.
    if (lane.paused) {
      consumer?.seek(batch.partition, batch.messages[0]?.offset ?? batch.nextOffset);
      return;
    }
    if (Number.isSafeInteger(batch.highWatermark) && batch.highWatermark >= 0) lane.highWatermark = String(batch.highWatermark);
    const end = ends ? (ends.get(batch.partition) ?? 0) : Number.POSITIVE_INFINITY;
    const queued: QueuedMessage[] = [];
    for (const m of batch.messages) {
      if (m.offset >= end) continue;
      queued.push({ offset: String(m.offset), key: typeof m.key === 'string' ? Buffer.from(m.key) : (m.key ?? null), value: m.value });
    }
    if (queued.length < batch.messages.length) pausePartition(batch.partition, true);
    const n = lane.enqueue(queued);
    stats.recordsIn += n;
    metrics.recordsIn.inc(n);
  };

  let watch: AssignmentWatch | undefined;
  let health: HealthPoll | undefined;
  try {
    // A system that is down or locked at start is an outage too: waited out, logged each time.
    await retry(() => sink.start(), {
      ...START_RETRY,
      onRetry: (err, attempt, delayMs) => slog.warn({ err: errorMessage(err), attempt, delayMs }, 'the sink cannot start yet; waiting for its system'),
    });
    cleanup.push(() => sink.close());
    const poll = pollSinkHealth(sink);
    health = poll;
    cleanup.push(async () => poll.stop());
    const kafka = createKafka(config, `${config.KAFKA_CLIENT_ID}-sink-${name}`);
    admin = kafka.admin();
    await admin.connect();
    cleanup.push(() => admin.disconnect());
    dlq = await createDlqWriter(config, `sink-${name}`);
    cleanup.push(() => dlq.close());
    const c = await BatchConsumer.connect({
      connection: config,
      clientId: `${config.KAFKA_CLIENT_ID}-sink-${name}`,
      groupId,
      topic,
      maxBatch: Math.min(1000, Math.max(32, policy.maxRecords)),
      // The handler only queues, so the consumer's fetch buffers hand everything over each round;
      // only the runner's delivery lanes pause (hold) a partition.
      pauseAt: Number.POSITIVE_INFINITY,
      concurrency: Number.MAX_SAFE_INTEGER,
      sessionTimeoutMs: 15_000,
      commitIntervalMs: OFFSET_COMMIT_INTERVAL_MS,
      log: slog,
      startOffsets: onAssign,
      onRevoke,
      onCaughtUp,
    });
    consumer = c;
    cleanup.push(() => c.stop());
    watch = new AssignmentWatch({
      groupId,
      topic,
      group: () => c.groupView(),
      rebalanceWaitMs: () => c.rebalanceWaitMs(),
      boundMs: config.KAFKA_REJOIN_TIMEOUT_SECONDS * 1000,
      log: slog,
      onStarved: (reason) => fail(new PipelineError('CONSUMER_STARVED', `the ${name} sink stopped consuming: ${reason}; exiting so it is restarted`, { retriable: true })),
    });
    watch.start();
    c.run(onBatch);
  } catch (err) {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    throw toPipelineError(err, 'SERVICE_UNREACHABLE');
  }

  const stallAfterMs = Math.max(STALL_REPORT_MS, 2 * policy.maxWaitMs);
  const stalls = new StallWatch(stallAfterMs);
  const reportStalls = () => {
    const progress = [...lanes.values()].map((l) => ({ partition: l.partition, nextOffset: l.nextOffset, lag: l.lag(), busy: l.busy }));
    for (const s of stalls.check(progress)) {
      const lane = lanes.get(s.partition);
      slog.warn(
        { partition: s.partition, nextOffset: s.nextOffset, lag: s.lag, stalledMs: s.stalledMs, queued: lane?.queue.size, paused: lane?.paused, closing: lane?.closing, resyncing: resyncing !== null, consumer: consumer?.describe(s.partition) },
        'partition has lag and makes no progress',
      );
    }
  };

  /**
   * Whether this runner makes progress (the heartbeat's `liveness`, which /health reads): not when
   * its consumer has silently lost its assignment (assignment-watch.ts), nor when a partition has
   * lag, nothing in flight and no progress (stall-watch.ts). An outage being retried is progress
   * of a kind: it shows as `waiting_since` (degraded), not here.
   */
  const liveness = (): { ok: boolean; reasons: string[] } => {
    const reasons: string[] = [];
    const assignment = watch?.status();
    if (assignment && !assignment.ok && assignment.reason) reasons.push(assignment.reason);
    const stalled = stalls.stalled();
    if (stalled.length > 0) reasons.push(`partitions ${stalled.join(', ')} have lag and made no progress for ${Math.round(stallAfterMs / 1000)} s or more`);
    return { ok: reasons.length === 0, reasons };
  };

  let refreshing = false;
  const refreshLag = async () => {
    if (refreshing || stopping) return;
    refreshing = true;
    try {
      for (const w of await admin.fetchTopicOffsets(topic)) {
        const lane = lanes.get(w.partition);
        if (lane) lane.highWatermark = w.high;
      }
      updateLag();
      reportStalls();
    } catch (err) {
      slog.debug({ err: errorMessage(err) }, 'lag refresh failed');
    } finally {
      refreshing = false;
    }
  };
  const lagTimer = setInterval(() => void refreshLag(), opts.lagRefreshMs ?? 5000);
  lagTimer.unref();
  slog.info({ groupId, batching: policy, retry: retryPolicy }, 'sink runner started');

  // A stop drains for at most DRAIN_GRACE_MS: past it, batches still failing (the system down)
  // are abandoned unsettled — not committed, so the next run reads them again.
  const drainOver = new AbortController();
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      setTimeout(() => drainOver.abort(new Error('drain grace period over')), DRAIN_GRACE_MS).unref();
      clearInterval(lagTimer);
      watch?.stop();
      if (resyncing) await resyncing;
      for (const lane of lanes.values()) {
        lane.draining = true;
        lane.kick();
      }
      await Promise.all([...lanes.values()].map((l) => l.idle()));
      await commits.flush();
      for (const c of cleanup.reverse()) {
        await c().catch((err: unknown) => slog.warn({ err: errorMessage(err) }, 'error while closing'));
      }
      updateLag();
      slog.info(stats.summary(), 'sink runner stopped');
      resolveDone();
    })();
    return stopped;
  };

  return {
    done,
    stop,
    snapshot: () => stats.snapshot(lanes, stopping),
    status: () => {
      const h = health?.current();
      return { ...stats.status(lanes), liveness: liveness(), ...(h ? { health: h } : {}), ...(sink.status ? { [name]: sink.status() } : {}) };
    },
  };
}
