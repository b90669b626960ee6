import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Config } from '../config/load.js';
import { errorMessage, toPipelineError, type PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { ensureTopics } from '../kafka/admin.js';
import { createConsumer, createKafka, type AssignedPartition, type EachBatchPayload } from '../kafka/client.js';
import type { RunningComponent } from '../runtime/lifecycle.js';
import { sleep } from '../runtime/retry.js';
import { transformBatch, type BatchContext } from './batch.js';
import { ContentTable } from './content-table.js';
import { processorMetrics } from './metrics.js';
import { ProcessorStats } from './stats.js';
import { TransactionWriter } from './transaction-writer.js';
import { TxnProducer } from './txn-producer.js';

/**
 * The stream processor: engagement change events → enriched records, exactly once.
 *
 * Start: topics ensured, the content table fully restored, the transactional producer initialised
 * (fencing an earlier incarnation with the same id), then the consumer joins `engage-processor.<client id>`
 * (read_committed, no auto-commit) and hands over up to PROCESSOR_MAX_BATCH messages of one partition
 * per `eachBatch`, PROCESSOR_CONCURRENCY partitions at a time. Each batch is transformed
 * (batch.ts) and submitted to the TransactionWriter; its offsets are resolved only after the
 * transaction holding its records and offsets has committed. A failed batch is left unresolved and
 * the consumer re-reads it.
 *
 * Backpressure: a batch holds its partition until committed, so at most CONCURRENCY × MAX_BATCH
 * records are in flight; the consumer fetches no further for a partition meanwhile (its prefetch is
 * bounded by queued.max.messages.kbytes). Rebalance: a revoke waits for in-flight transactions to
 * commit or abort before the partitions are given up (the library also waits for running batches
 * before unassigning). Stop: leave the group after in-flight batches commit, then close.
 */

export interface Processor extends RunningComponent {
  /** Resolves once stopped; rejects on a fatal error (the process should then stop). */
  done: Promise<void>;
  status(): Record<string, unknown>;
}

let instanceSeq = 0;
const FAILED_BATCH_PAUSE_MS = 500;

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
  const table = await ContentTable.open({ brokers: config.kafkaBrokers, clientId: `${config.KAFKA_CLIENT_ID}-processor`, topic: config.KAFKA_TOPIC_CONTENT, log: plog, metrics });
  const kafka = createKafka(config.kafkaBrokers, `${config.KAFKA_CLIENT_ID}-processor`);
  let producer: TxnProducer;
  try {
    producer = await TxnProducer.connect({
      brokers: config.kafkaBrokers,
      clientId: `${config.KAFKA_CLIENT_ID}-processor`,
      transactionalId,
      transactionTimeoutMs: config.PROCESSOR_TRANSACTION_TIMEOUT_MS,
      log: plog,
    });
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
  const consumer = createConsumer(kafka, {
    groupId,
    fromBeginning: true,
    readCommitted: true,
    autoCommit: false,
    sessionTimeoutMs: config.PROCESSOR_SESSION_TIMEOUT_MS,
    maxBatchSize: config.PROCESSOR_MAX_BATCH,
    onRebalance: async (kind: 'assign' | 'revoke', partitions: AssignedPartition[]) => {
      const ids = partitions.map((p) => p.partition);
      if (kind === 'assign') {
        stats.assign(ids);
        if (ids.length > 0) plog.info({ partitions: ids }, 'processor partitions assigned');
        return;
      }
      // Settle what was submitted for these partitions while the generation is still ours.
      await writer?.drain();
      stats.revoke(ids);
      if (ids.length > 0) plog.info({ partitions: ids }, 'processor partitions revoked');
    },
  });
  writer = new TransactionWriter(producer, consumer, plog, metrics, (err) => {
    failDone(err);
  });
  const ctx: BatchContext = {
    table,
    enrichedTopic: config.KAFKA_TOPIC_ENRICHED,
    dlqTopic: config.KAFKA_TOPIC_DLQ,
    contentWaitMs: config.CONTENT_WAIT_MS,
    signal: stopping.signal,
  };

  const eachBatch = async ({ batch, resolveOffset, isStale }: EachBatchPayload): Promise<void> => {
    const n = batch.messages.length;
    if (n === 0 || stopping.signal.aborted || isStale()) return;
    const handedOverAt = performance.now();
    const last = batch.messages[n - 1]?.offset ?? '0';
    stats.batchStarted(n);
    try {
      const outcome = await transformBatch(batch, handedOverAt, ctx);
      const next = (BigInt(last) + 1n).toString();
      await (writer as TransactionWriter).submit({ records: outcome.records, offsets: [{ topic: batch.topic, partition: batch.partition, offset: next }] });
      resolveOffset(last);
      stats.batchCommitted(batch.partition, n, outcome, handedOverAt, Number(batch.highWatermark) - Number(next));
    } catch (err) {
      stats.batchFailed(n);
      if (stopping.signal.aborted) return;
      plog.warn({ partition: batch.partition, offset: batch.messages[0]?.offset, err: errorMessage(err) }, 'batch not committed; it will be re-read');
      await sleep(FAILED_BATCH_PAUSE_MS);
    } finally {
      stats.batchEnded(n);
    }
  };

  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [inputTopic] });
    await consumer.run({ eachBatch, eachBatchAutoResolve: false, partitionsConsumedConcurrently: config.PROCESSOR_CONCURRENCY });
  } catch (err) {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await table.close();
    throw toPipelineError(err, 'SERVICE_UNREACHABLE');
  }
  plog.info({ group: groupId, topic: inputTopic, contentRows: table.size, transactionalId }, 'processor consuming');

  let stopped: Promise<void> | undefined;
  return {
    done,
    status: () => ({ ...stats.snapshot(), content_table: table.status(), state: stopping.signal.aborted ? 'stopping' : 'running' }),
    stop() {
      stopped ??= (async () => {
        stopping.abort(new Error('processor stopping'));
        // Leaves the group once running batches have committed (or been left unresolved).
        await consumer.disconnect().catch((err: unknown) => plog.warn({ err: errorMessage(err) }, 'consumer disconnect failed'));
        await writer?.drain();
        await producer.disconnect().catch((err: unknown) => plog.warn({ err: errorMessage(err) }, 'producer disconnect failed'));
        await table.close().catch((err: unknown) => plog.warn({ err: errorMessage(err) }, 'content table close failed'));
        plog.info(stats.snapshot(), 'processor stopped');
        resolveDone();
      })();
      return stopped;
    },
  };
}
