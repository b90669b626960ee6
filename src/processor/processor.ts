import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Config } from '../config/load.js';
import { errorMessage, PipelineError, toPipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { ensureTopics } from '../kafka/admin.js';
import { BatchConsumer, type PartitionBatch } from '../kafka/batch-consumer.js';
import { createKafka } from '../kafka/client.js';
import { watchFetch } from '../kafka/fetch-probe.js';
import { watchAssignment } from '../kafka/group-probes.js';
import type { RunningComponent } from '../runtime/lifecycle.js';
import { sleep } from '../runtime/retry.js';
import { transformBatch, type BatchContext } from './batch.js';
import { ContentTable } from './content-table.js';
import { openProcessorFormat } from './format.js';
import { IdleOffsets } from './idle-offsets.js';
import { processorMetrics } from './metrics.js';
import { ProcessorStats } from './stats.js';
import { TransactionWriter } from './transaction-writer.js';
import { TxnProducer } from '../kafka/txn-producer.js';

/**
 * The stream processor: engagement change events → enriched records, exactly once.
 *
 * Start: topics ensured, the content table fully restored, the transactional producer initialised
 * (fencing an earlier incarnation with the same id), then the BatchConsumer (src/kafka/batch-consumer.ts,
 * librdkafka's plain consumer) joins `engage-processor.<client id>` (read_committed, no auto-commit)
 * and hands over up to PROCESSOR_MAX_BATCH messages of one partition per batch,
 * PROCESSOR_CONCURRENCY partitions at a time. Each batch is transformed (batch.ts) and submitted to
 * the TransactionWriter; the batch is done only once the transaction holding its records and
 * offsets has committed. A failed batch is rejected and the consumer rewinds and re-reads it.
 * A partition idle for IDLE_SETTLE_MS gets its position (past the marker it ends on) committed in
 * an offsets-only transaction (idle-offsets.ts).
 *
 * Backpressure: a batch holds its partition until committed, so at most CONCURRENCY × MAX_BATCH
 * records are in flight, and a partition holding two batches more is paused. Rebalance: a revoke
 * waits for the revoked partitions' running batches and then for every in-flight transaction to
 * commit or abort before the partitions are given up. Stop: leave the group after in-flight
 * batches commit, then close.
 */

export interface Processor extends RunningComponent {
  /** Resolves once stopped; rejects on a fatal error (the process should then stop). */
  done: Promise<void>;
  status(): Record<string, unknown>;
}

let instanceSeq = 0;
const FAILED_BATCH_PAUSE_MS = 500;
/** How long the content table's end offsets may fail with "Unknown partition" before the processor restarts (content-table.ts metadataStuckMs). */
const CONTENT_METADATA_STUCK_MS = 30_000;
/**
 * Transaction pacing (transaction-writer.ts, runtime/commit-pacer.ts): after a transaction that
 * took d ms, the next starts d × COMMIT_PACE_RATIO ms after it ended, never more than
 * COMMIT_MAX_GAP_MS later (unless a full batch waits: then at once).
 */
const COMMIT_PACE_RATIO = 1;
const COMMIT_MAX_GAP_MS = 100;
/** How long an input partition stays idle before the marker it ends on is committed past. */
const IDLE_SETTLE_MS = 1000;

export function processorGroupId(config: Config): string {
  return `engage-processor.${config.KAFKA_CLIENT_ID}`;
}

export async function startProcessor(config: Config, log: Logger): Promise<Processor> {
  const plog = log.child({ component: 'processor' });
  const metrics = processorMetrics();
  const groupId = processorGroupId(config);
  const inputTopic = config.KAFKA_TOPIC_ENGAGEMENT_EVENTS;
  const transactionalId = `${groupId}-${os.hostname()}-${process.pid}-${++instanceSeq}`;
  const stats = new ProcessorStats(groupId, transactionalId, metrics);

  await ensureTopics(config);
  // KAFKA_VALUE_FORMAT=avro: the enriched schema registered, the input topics' readers (format.ts).
  const format = await openProcessorFormat(config);
  const table = await ContentTable.open({
    input: format.content,
    connection: config,
    clientId: `${config.KAFKA_CLIENT_ID}-processor`,
    topic: config.KAFKA_TOPIC_CONTENT,
    log: plog,
    metrics,
  });
  const connectProducer = () =>
    TxnProducer.connect({
      connection: config,
      clientId: `${config.KAFKA_CLIENT_ID}-processor`,
      transactionalId,
      transactionTimeoutMs: config.PROCESSOR_TRANSACTION_TIMEOUT_MS,
      log: plog,
      compression: config.KAFKA_COMPRESSION,
    });
  let producer: TxnProducer;
  try {
    producer = await connectProducer();
  } catch (err) {
    await table.close();
    throw toPipelineError(err, 'SERVICE_UNREACHABLE');
  }

  const stopping = new AbortController();
  let resolveDone: () => void = () => undefined;
  let failDone: (err: PipelineError) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    failDone = reject;
  });
  done.catch(() => undefined);

  let writer: TransactionWriter | undefined;
  const idleOffsets = new IdleOffsets((partition, offset) => {
    if (writer === undefined || stopping.signal.aborted) return Promise.reject(new Error('processor not running'));
    return writer.submit({ records: [], offsets: [{ topic: inputTopic, partition, offset }] });
  }, IDLE_SETTLE_MS);
  let consumer: BatchConsumer;
  try {
    consumer = await BatchConsumer.connect({
      connection: config,
      clientId: `${config.KAFKA_CLIENT_ID}-processor`,
      groupId,
      topic: inputTopic,
      maxBatch: config.PROCESSOR_MAX_BATCH,
      // Backpressure by not polling (the prefetch is kept), with a per-partition bound as well.
      maxBuffered: 2 * config.PROCESSOR_CONCURRENCY * config.PROCESSOR_MAX_BATCH,
      pauseAt: 3 * config.PROCESSOR_MAX_BATCH,
      concurrency: config.PROCESSOR_CONCURRENCY,
      sessionTimeoutMs: config.PROCESSOR_SESSION_TIMEOUT_MS,
      log: plog,
      onAssign: (ids) => {
        stats.assign(ids);
        idleOffsets.forget(ids);
        if (ids.length > 0) plog.info({ partitions: ids }, 'processor partitions assigned');
      },
      // Idle: nothing handed over is uncommitted, so the lag is what the position has not reached.
      onCaughtUp: (partition, position, highWatermark) => {
        stats.setLag(partition, highWatermark - position);
        if (!stopping.signal.aborted) idleOffsets.idle(partition, position);
      },
      onRevoke: async (ids) => {
        // Settle what was submitted for these partitions while the generation is still ours.
        await writer?.drain();
        stats.revoke(ids);
        idleOffsets.forget(ids);
        if (ids.length > 0) plog.info({ partitions: ids }, 'processor partitions revoked');
      },
    });
  } catch (err) {
    await producer.disconnect().catch(() => undefined);
    await table.close();
    throw toPipelineError(err, 'SERVICE_UNREACHABLE');
  }
  const txWriter = new TransactionWriter(
    producer,
    consumer.groupClient,
    plog,
    metrics,
    (err) => {
      failDone(err);
    },
    { ratio: COMMIT_PACE_RATIO, maxGapMs: COMMIT_MAX_GAP_MS, fullAt: config.PROCESSOR_MAX_BATCH },
    connectProducer,
  );
  writer = txWriter;
  const ctx: BatchContext = {
    table,
    enrichedTopic: config.KAFKA_TOPIC_ENRICHED,
    dlqTopic: config.KAFKA_TOPIC_DLQ,
    contentWaitMs: config.CONTENT_WAIT_MS,
    maxMessageBytes: config.KAFKA_MESSAGE_MAX_BYTES,
    format,
    signal: stopping.signal,
  };

  // Resolves once the batch's records and offsets committed; rejects to have it re-read.
  // Nothing of `batch` is referenced once it is transformed: its messages can be collected while
  // the batch waits for its transaction (fewer live objects for every scavenge meanwhile).
  const handleBatch = async (batch: PartitionBatch): Promise<void> => {
    stopping.signal.throwIfAborted();
    const { topic, partition, nextOffset, highWatermark, fetchedAt } = batch;
    const n = batch.messages.length;
    const firstOffset = batch.messages[0]?.offset;
    const handedOverAt = performance.now();
    idleOffsets.busy(partition);
    stats.batchStarted(n);
    try {
      // The content barrier may use any offsets query begun after the batch's consume round.
      const outcome = await transformBatch(batch, fetchedAt, ctx);
      await txWriter.submit({ records: outcome.records, offsets: [{ topic, partition, offset: nextOffset }] });
      idleOffsets.committed(partition, nextOffset);
      stats.batchCommitted(partition, n, outcome, handedOverAt, highWatermark - nextOffset);
    } catch (err) {
      stats.batchFailed(n);
      if (!stopping.signal.aborted) {
        plog.warn(
          { partition, offset: firstOffset, err: errorMessage(err) },
          'batch not committed; it will be re-read',
        );
        const stuckMs = table.metadataStuckMs();
        if (stuckMs > CONTENT_METADATA_STUCK_MS)
          failDone(
            new PipelineError(
              'SERVICE_UNREACHABLE',
              `the content topic's partitions have been unknown to this process's Kafka client for ${Math.round(stuckMs / 1000)} s (stale metadata after a broker restart); restarting`,
              { retriable: true },
            ),
          );
        await sleep(FAILED_BATCH_PAUSE_MS);
      }
      throw err;
    } finally {
      stats.batchEnded(n);
    }
  };

  // A member that silently lost its assignment exits to be restarted (assignment-watch.ts).
  // Its admin client answers only the watch's rare question (which partitions have no member).
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-processor-watch`).admin();
  await admin
    .connect()
    .catch((err: unknown) =>
      plog.warn(
        { err: errorMessage(err) },
        'assignment watch: admin connect failed (its check answers "unknown" until it connects)',
      ),
    );
  const watch = watchAssignment(consumer, {
    connection: config,
    admin,
    groupId,
    topic: inputTopic,
    boundMs: config.KAFKA_REJOIN_TIMEOUT_SECONDS * 1000,
    who: 'the processor',
    log: plog,
    onStarved: failDone,
  });
  // A consumer fetching nothing while the broker holds committed input past it exits too (fetch-probe.ts).
  const fetchWatch = watchFetch(consumer, { topic: inputTopic, who: 'the processor', log: plog, onStalled: failDone });
  consumer.run(handleBatch);
  plog.info({ group: groupId, topic: inputTopic, contentRows: table.size, transactionalId }, 'processor consuming');

  let stopped: Promise<void> | undefined;
  return {
    done,
    status: () => {
      const assignment = watch.status();
      const liveness = { ok: assignment.ok, reasons: assignment.reason && !assignment.ok ? [assignment.reason] : [] };
      return {
        ...stats.snapshot(),
        content_table: table.status(),
        state: stopping.signal.aborted ? 'stopping' : 'running',
        liveness,
      };
    },
    stop() {
      stopped ??= (async () => {
        stopping.abort(new Error('processor stopping'));
        watch.stop();
        fetchWatch.stop();
        // Leaves the group once running batches have committed (or been left unresolved).
        await consumer.stop().catch((err: unknown) => plog.warn({ err: errorMessage(err) }, 'consumer stop failed'));
        await txWriter.close();
        await txWriter.currentProducer
          .disconnect()
          .catch((err: unknown) => plog.warn({ err: errorMessage(err) }, 'producer disconnect failed'));
        await table
          .close()
          .catch((err: unknown) => plog.warn({ err: errorMessage(err) }, 'content table close failed'));
        await admin.disconnect().catch(() => undefined);
        plog.info(stats.snapshot(), 'processor stopped');
        resolveDone();
      })();
      return stopped;
    },
  };
}
