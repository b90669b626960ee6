import type { RdKafka } from '@confluentinc/kafka-javascript';
import type { BatchConsumerOptions } from './batch-types.js';
import { connectionProps } from './client.js';

/**
 * The librdkafka settings of a BatchConsumer (batch-consumer.ts), with the reason for each one
 * that differs from librdkafka's default (`consumerProps`, called once per consumer before it
 * connects), and the two calls of the binding its type declarations leave out.
 */

export type TopicPartition = { topic: string; partition: number };
type RawConsumer = InstanceType<typeof RdKafka.KafkaConsumer>;
type ConsumerConfig = ConstructorParameters<typeof RdKafka.KafkaConsumer>[0];

/** RD_KAFKA_RESP_ERR__NO_OFFSET: a commit of the stored offsets found nothing new to commit. */
export const ERR_NO_OFFSET = -168;
const FETCH_QUEUE_BACKOFF_MS = 20;
/** How often librdkafka reports the group's state (statistics), read by the assignment watch. */
const STATS_INTERVAL_MS = 5000;

export interface ConsumerCallbacks {
  /** librdkafka's rebalance callback: the member applies the (un)assignment itself. */
  onRebalance(code: number, assignment: TopicPartition[]): void;
}

export function consumerProps(opts: BatchConsumerOptions, callbacks: ConsumerCallbacks): ConsumerConfig {
  return {
    ...connectionProps(opts.connection),
    'client.id': opts.clientId,
    'group.id': opts.groupId,
    'enable.auto.commit': opts.commitIntervalMs !== undefined,
    ...(opts.commitIntervalMs !== undefined ? { 'auto.commit.interval.ms': opts.commitIntervalMs } : {}),
    'enable.auto.offset.store': false,
    'auto.offset.reset': 'earliest',
    'isolation.level': opts.readCommitted === false ? 'read_uncommitted' : 'read_committed',
    'session.timeout.ms': opts.sessionTimeoutMs,
    // Under read_committed a fetch waiting at the broker is not answered when a transaction
    // commits, only when this wait ends: it bounds each hop's latency (500 ms measured Redis
    // freshness p99 1,973 ms at 1,000 events/s against 551 ms with 50; docs/benchmarks.md).
    'fetch.wait.max.ms': 50,
    'queued.max.messages.kbytes': 32768,
    // A paused partition's prefetched messages are dropped, and once its local queue has been
    // full librdkafka waits this long before fetching it again: at the default (1 s) every resume
    // of a busy partition stalled it ~1 s, so one hot partition drained at ~3,000 events/s
    // (docs/benchmarks.md, 2026-11-28).
    'fetch.queue.backoff.ms': FETCH_QUEUE_BACKOFF_MS,
    // Eager rebalancing (assign/unassign of the whole assignment), which the callback implements.
    'partition.assignment.strategy': 'range,roundrobin',
    // The group's state as this member sees it, for the assignment watch (assignment-watch.ts).
    'statistics.interval.ms': STATS_INTERVAL_MS,
    rebalance_cb: (err: RdKafka.LibrdKafkaError, assignment: TopicPartition[]) =>
      callbacks.onRebalance(err.code, assignment),
    // The broker's answer to each commit (`commitStored` only queues it): failures are logged here.
    offset_commit_cb: (
      err: RdKafka.LibrdKafkaError | null,
      offsets: Array<TopicPartition & { offset: number; error?: unknown }>,
    ) => {
      // ERR_NO_OFFSET: nothing new was stored since the last commit (e.g. at close), not a failure.
      if (err && err.code !== ERR_NO_OFFSET)
        opts.log.warn(
          { err: err.message, code: err.code, offsets: offsets?.map((o) => `${o.partition}@${o.offset}`) },
          'offset commit failed (a later commit covers it)',
        );
    },
  };
}

/** Makes `consume(n)` return as soon as some messages are ready, not after the full timeout. */
export function returnOnFirstMessage(consumer: RawConsumer): void {
  (
    consumer as unknown as { setDefaultIsTimeoutOnlyForFirstMessage(v: boolean): void }
  ).setDefaultIsTimeoutOnlyForFirstMessage(true);
}

/**
 * Commits the offsets stored with `offsetsStore`. Resolves once librdkafka has queued the commit
 * (the broker's answer reaches `offset_commit_cb`), at once if nothing new is stored; rejects if
 * the consumer is not connected (any more).
 */
export function commitStoredOffsets(consumer: RawConsumer): Promise<void> {
  const raw = consumer as unknown as {
    commitCb(tp: null, cb: (err: (Error & { code?: number }) | null) => void): void;
  };
  return new Promise<void>((resolve, reject) => {
    try {
      raw.commitCb(null, (err) => (err && err.code !== ERR_NO_OFFSET ? reject(err) : resolve()));
    } catch (err) {
      reject(err);
    }
  });
}
