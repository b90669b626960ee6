import type { Config } from '../config/load.js';
import { errorMessage, toPipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { ensureTopics } from '../kafka/admin.js';
import { BatchConsumer } from '../kafka/batch-consumer.js';
import type { AssignmentWatch } from '../kafka/assignment-watch.js';
import { watchFetch } from '../kafka/fetch-probe.js';
import { watchAssignment } from '../kafka/group-probes.js';
import { createKafka } from '../kafka/client.js';
import type { Sink, SinkFactory } from '../core/sink-contract.js';
import { createDlqWriter } from './dlq-writer.js';
import type { RunningComponent } from './lifecycle.js';
import { retry } from './retry.js';
import { Semaphore } from './semaphore.js';
import { pollSinkHealth, type HealthPoll } from './health-poll.js';
import { decodeEncodedMessage } from './encoded-record.js';
import { decodeEnrichedMessage, type MessageDecoder } from './sink-decode.js';
import { avroEnrichedDecoder, enrichedReader } from './avro-decode.js';
import { sinkMetrics } from './sink-metrics.js';
import { consumerCallbacks } from './sink-runner-callbacks.js';
import {
  resolveBatching,
  resolveRetryPolicy,
  resolveWriteConcurrency,
  sinkGroupId,
  type SinkRunnerOptions,
} from './sink-runner-options.js';
import { watchProgress } from './sink-runner-progress.js';
import { SinkRunnerState } from './sink-runner-state.js';
import { RunnerStats, type SinkRunnerSnapshot } from './sink-runner-stats.js';
import { stopper } from './sink-runner-stop.js';

export type { SinkRunnerOptions } from './sink-runner-options.js';
export type { SinkRunnerSnapshot, PartitionSnapshot } from './sink-runner-stats.js';

/**
 * The sink consumers' group session timeout: a sink instance that stops heartbeating (SIGKILL, a
 * hung host; a SIGTERM leaves the group at once) loses its partitions after it. It must outlast a
 * group coordinator's move when a broker is lost — no successful heartbeat from the last one before
 * the loss (up to librdkafka's 3 s interval) until the new coordinator answers, after the leader
 * election (nominally 13 s on the stack's cluster, 12–18.5 s measured under load) — or librdkafka gives the member up,
 * revokes its partitions and rejoins as a new member, which the group then waits for the old one's
 * session to end to place: a second stall (docs/operations.md, "What the loss of a broker does").
 */
export const SINK_SESSION_TIMEOUT_MS = 30_000;
/**
 * Drives one sink: a Kafka consumer of its own group (BatchConsumer: librdkafka's plain consumer,
 * read_committed, no auto-commit) feeding per-partition delivery lanes (delivery-lane.ts) that
 * batch by size and time, deliver through batch-delivery.ts (check → DLQ confirmed → write with
 * retries → commit), pause their partition when their queue is full and resume it once drained. On assignment each partition is positioned explicitly (offsets.ts); on
 * revocation the in-flight batch finishes (and commits) and the queued rest is dropped for the next
 * owner to re-read; a SINK_STATE_LOST re-positions every partition. `stop` drains: it stops
 * consuming, writes what is queued, commits, disconnects and closes the sink.
 *
 * The pieces: sink-runner-state.ts (what they share, and the lanes' host: deliver, pause, resume),
 * sink-runner-callbacks.ts (the consumer's assign, revoke, caught-up and batch callbacks),
 * sink-runner-resync.ts (the resync after state loss), sink-runner-progress.ts (lag refresh, stall
 * reports, liveness), sink-runner-stop.ts (the drain and close). This file starts them in order.
 */

export interface SinkRunner extends RunningComponent {
  /** Resolves when stopped; rejects on a fatal error (the component should then stop). */
  done: Promise<void>;
  status(): Record<string, unknown>;
  snapshot(): SinkRunnerSnapshot;
}

/** `sink.start()` failing retriably (the system down, its file locked): tried again without bound. */
const START_RETRY = { attempts: Number.MAX_SAFE_INTEGER, baseMs: 500, maxMs: 10_000, jitter: 'full' } as const;
/** How often settled offsets reach the group (commit-tracker.ts): the staleness of the group's
 *  committed lag, and what a crash may re-deliver (skipped by the sink, deduped by the system). */
const OFFSET_COMMIT_INTERVAL_MS = 1000;

export async function startSinkRunner(
  config: Config,
  factory: SinkFactory,
  log: Logger,
  opts: SinkRunnerOptions = {},
): Promise<SinkRunner> {
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
  // Avro (KAFKA_VALUE_FORMAT=avro): decoded through the registry, the fast path unused (avro-decode.ts).
  const reader = opts.decoder ? undefined : await enrichedReader(config, topic);
  // A sink with a fast path for undecoded batches gets them undecoded (encoded-record.ts).
  const decoder: MessageDecoder =
    opts.decoder ??
    (reader ? avroEnrichedDecoder(reader) : sink.writeEncoded ? decodeEncodedMessage : decodeEnrichedMessage);
  // Reported from the start (0) for a sink that has the fast path, so a declined rate is defined.
  if (sink.writeEncoded && !reader) for (const c of Object.values(metrics.fastPath)) c.inc(0);
  let failDone: (err: Error) => void = () => undefined;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    failDone = reject;
  });
  done.catch(() => undefined);
  const setup = {
    name,
    topic,
    groupId,
    stage,
    policy,
    retryPolicy,
    log: slog,
    metrics,
    stats,
    writeLock,
    sink,
    decoder,
    opts,
  };
  const state = new SinkRunnerState(setup, (err) => failDone(err));
  const { onAssign, onRevoke, onCaughtUp, onBatch } = consumerCallbacks(state);

  let watch: AssignmentWatch | undefined;
  let fetchWatch: { stop(): void } | undefined;
  let health: HealthPoll | undefined;
  try {
    // A system that is down or locked at start is an outage too: waited out, logged each time.
    await retry(() => sink.start(), {
      ...START_RETRY,
      onRetry: (err, attempt, delayMs) =>
        slog.warn({ err: errorMessage(err), attempt, delayMs }, 'the sink cannot start yet; waiting for its system'),
    });
    cleanup.push(() => sink.close());
    const poll = pollSinkHealth(sink);
    health = poll;
    cleanup.push(async () => poll.stop());
    const kafka = createKafka(config, `${config.KAFKA_CLIENT_ID}-sink-${name}`);
    const admin = kafka.admin();
    state.admin = admin;
    await admin.connect();
    cleanup.push(() => admin.disconnect());
    const dlq = await createDlqWriter(config, `sink-${name}`);
    state.dlq = dlq;
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
      sessionTimeoutMs: SINK_SESSION_TIMEOUT_MS,
      commitIntervalMs: OFFSET_COMMIT_INTERVAL_MS,
      log: slog,
      startOffsets: onAssign,
      onRevoke,
      onCaughtUp,
    });
    state.consumer = c;
    cleanup.push(() => c.stop());
    watch = watchAssignment(c, {
      connection: config,
      admin,
      groupId,
      topic,
      boundMs: config.KAFKA_REJOIN_TIMEOUT_SECONDS * 1000,
      who: `the ${name} sink`,
      log: slog,
      onStarved: (err) => state.fail(err),
    });
    // A consumer fetching nothing while the broker holds committed records past it fails the runner (fetch-probe.ts).
    fetchWatch = watchFetch(c, { topic, who: `the ${name} sink`, log: slog, onStalled: (err) => state.fail(err) });
    c.run(onBatch);
  } catch (err) {
    fetchWatch?.stop();
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    throw toPipelineError(err, 'SERVICE_UNREACHABLE');
  }

  const progress = watchProgress(state, watch);
  slog.info({ groupId, batching: policy, retry: retryPolicy }, 'sink runner started');
  const assignment = watch;
  const fetching = fetchWatch;
  const stop = stopper(state, {
    stopWatches: () => {
      progress.stop();
      assignment?.stop();
      fetching?.stop();
    },
    cleanup,
    resolveDone: () => resolveDone(),
  });

  return {
    done,
    stop,
    snapshot: () => stats.snapshot(state.lanes, state.stopping),
    status: () => {
      const h = health?.current();
      return {
        ...stats.status(state.lanes),
        liveness: progress.liveness(),
        ...(h ? { health: h } : {}),
        ...(sink.status ? { [name]: sink.status() } : {}),
      };
    },
  };
}
