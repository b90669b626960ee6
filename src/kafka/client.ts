import { KafkaJS } from '@confluentinc/kafka-javascript';
import { kafkaLogger } from '../core/logger.js';
import { DEFAULT_KAFKA_COMPRESSION, type KafkaCompression } from '../config/schema.js';

/**
 * Kafka clients through @confluentinc/kafka-javascript's KafkaJS-style API (admin, the DLQ's reader
 * and replay, single writes), with logging and the defaults exactly-once depends on (idempotence,
 * read_committed) set in one place. The per-event paths use librdkafka's plain clients one level
 * down instead: ./batch-consumer.ts (processor, sink runtime) and ./txn-producer.ts (CDC, processor).
 */

export type Kafka = KafkaJS.Kafka;
export type Producer = KafkaJS.Producer;
export type Consumer = KafkaJS.Consumer;
export type Admin = KafkaJS.Admin;

/**
 * Where and how every client reaches Kafka: the bootstrap servers and the librdkafka security
 * properties (TLS, SASL) from the configuration (src/config/load.ts `kafkaSecurity`; none for the
 * private stack's plaintext listener). A Config is one.
 */
export interface KafkaConnection {
  kafkaBrokers: readonly string[];
  kafkaSecurity?: Readonly<Record<string, string>>;
  /** KAFKA_MESSAGE_MAX_BYTES (a Config has it); unset: DEFAULT_MESSAGE_MAX_BYTES. */
  KAFKA_MESSAGE_MAX_BYTES?: number;
}

/** librdkafka's own default `message.max.bytes`, and KAFKA_MESSAGE_MAX_BYTES's. */
export const DEFAULT_MESSAGE_MAX_BYTES = 1_000_000;
/**
 * What a topic's `max.message.bytes` allows beyond KAFKA_MESSAGE_MAX_BYTES: the broker checks a whole
 * record batch (framing, and compression that may not shrink an incompressible payload), while
 * librdkafka checks the records it batches against `message.max.bytes`.
 */
export const TOPIC_SIZE_HEADROOM = 64 * 1024;
/** What librdkafka counts against `message.max.bytes` beyond a record's key and value (generous):
 *  a record whose key + value exceed `message.max.bytes` less this is refused at produce. */
export const RECORD_FRAMING_BYTES = 1024;

/**
 * The size limits every client and topic is set from, all derived from KAFKA_MESSAGE_MAX_BYTES:
 * `record` = librdkafka's `message.max.bytes` (a produce of a larger record fails at once, locally),
 * `topic` = the `max.message.bytes` of the topics the pipeline creates, `fetch` = what a consumer
 * must be able to take in one partition fetch.
 */
export function messageLimits(c: KafkaConnection): { record: number; topic: number; fetch: number } {
  const record = c.KAFKA_MESSAGE_MAX_BYTES ?? DEFAULT_MESSAGE_MAX_BYTES;
  const topic = record + TOPIC_SIZE_HEADROOM;
  return { record, topic, fetch: Math.max(topic, 1 << 20) };
}

/**
 * How every client, plain or KafkaJS-style, finds its way around a broker's loss and return
 * (docs/operations.md, "What the loss of a broker does"):
 * - `reconnect.backoff.max.ms`: a lost broker is retried at most this far apart (from 100 ms,
 *   doubling, with jitter), so a broker that is back — and soon leads its partitions again — is
 *   reached within about a second, not librdkafka's 10 s.
 * - `socket.connection.setup.timeout.ms`: a broker whose host is gone (no RST: SYNs unanswered) is
 *   given up after this, not 30 s, and the next address or broker tried (on one machine a dead
 *   broker's port refuses at once, so the replicated-Kafka test does not exercise this).
 * A lost leader needs no setting: its partitions' next request fails and librdkafka refreshes
 * their metadata at once, then every `retry.backoff.ms` (100 ms, up to 1 s) until a leader is known.
 */
export const FAILOVER_PROPS: Readonly<Record<string, string>> = {
  'reconnect.backoff.ms': '100',
  'reconnect.backoff.max.ms': '1000',
  'socket.connection.setup.timeout.ms': '10000',
};

/**
 * The KafkaJS-style clients (admin, DLQ writer) also turn `enable.sparse.connections` off: with it
 * on (librdkafka's default) a lost broker falls back to a state in which every lookup of it asks
 * for a connection at once, bypassing the reconnect backoff, and an idle admin or idempotent
 * producer of the pipeline's tried a dead broker 2,400–5,700 times a second for as long as it was
 * down (measured 2026-12-07, librdkafka 2.15.1: each sink process ~4,000/s, CPU the brokers' own
 * failover needed); off, 6 attempts in the first 5 s, then none. The price: each such client keeps
 * a connection to every broker. The plain clients (./batch-consumer.ts, ./txn-producer.ts) were
 * not seen to do it (0–17 attempts in 5 s) and keep librdkafka's default.
 */
const KAFKAJS_FAILOVER_PROPS: Readonly<Record<string, string>> = {
  ...FAILOVER_PROPS,
  'enable.sparse.connections': 'false',
};

/**
 * The librdkafka properties a plain client (producer, consumer) is created with to reach Kafka.
 * `message.max.bytes` applies to producers (the record limit) and consumers alike (a consumer's
 * `fetch.max.bytes` is raised to at least it, and its `receive.message.max.bytes` to that + 512).
 */
export function connectionProps(c: KafkaConnection): Record<string, string> {
  return {
    'bootstrap.servers': c.kafkaBrokers.join(','),
    ...c.kafkaSecurity,
    ...FAILOVER_PROPS,
    'message.max.bytes': String(messageLimits(c).record),
  };
}

/** A consumer's fetch sizes: one partition's fetch holds the largest record a topic accepts. */
export function consumerFetchProps(c: KafkaConnection): Record<string, number> {
  const { fetch } = messageLimits(c);
  return { 'max.partition.fetch.bytes': fetch, 'fetch.max.bytes': Math.max(fetch, 50 * 1024 * 1024) };
}

/**
 * librdkafka's codes for a failure that a later attempt may not meet: a local timeout, a broker lost
 * or none reachable, a partition's leader or a group's coordinator moving or loading — what a
 * broker's loss returns until its leader election is over. The KafkaJS-style clients' errors carry
 * these codes without marking them retriable.
 */
const TRANSIENT_KAFKA_CODES: ReadonlySet<number> = new Set([
  -185, // ERR__TIMED_OUT
  -187, // ERR__ALL_BROKERS_DOWN
  -195, // ERR__TRANSPORT
  5, // LEADER_NOT_AVAILABLE
  6, // NOT_LEADER_OR_FOLLOWER
  7, // REQUEST_TIMED_OUT
  14, // COORDINATOR_LOAD_IN_PROGRESS
  15, // COORDINATOR_NOT_AVAILABLE
  16, // NOT_COORDINATOR
]);

/** True for a Kafka client's error that a broker's loss or a slow broker explains (TRANSIENT_KAFKA_CODES). */
export function isTransientKafkaError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && TRANSIENT_KAFKA_CODES.has(code);
}

export function createKafka(c: KafkaConnection, clientId: string): Kafka {
  return new KafkaJS.Kafka({
    ...c.kafkaSecurity,
    ...KAFKAJS_FAILOVER_PROPS,
    'message.max.bytes': messageLimits(c).record,
    kafkaJS: {
      brokers: [...c.kafkaBrokers],
      clientId,
      logLevel: KafkaJS.logLevel.WARN,
      logger: kafkaLogger(),
      connectionTimeout: 5000,
      requestTimeout: 30000,
    },
  });
}

/**
 * The partitioner of every producer of the pipeline: librdkafka's default (CRC32 of the key), which
 * the per-event producers (txn-producer.ts, the backfill's page-producer.ts) use. The KafkaJS-style
 * layer would otherwise pick murmur2_random, so a record re-sent through it (a DLQ replay) would land
 * on another partition than the same key written by the CDC or the processor.
 */
export const PIPELINE_PARTITIONER = 'consistent_random';

export interface TransactionalProducerOptions {
  transactionalId: string;
  /** librdkafka batching latency; small, since a transaction commit flushes anyway. */
  lingerMs?: number;
  transactionTimeoutMs?: number;
  /** KAFKA_COMPRESSION (default lz4). */
  compression?: KafkaCompression;
}

/** A transactional, idempotent producer (fenced by transactional id across restarts). */
export function transactionalProducer(kafka: Kafka, opts: TransactionalProducerOptions): Producer {
  return kafka.producer({
    kafkaJS: {
      transactionalId: opts.transactionalId,
      idempotent: true,
      maxInFlightRequests: 5,
      transactionTimeout: opts.transactionTimeoutMs ?? 60000,
      acks: -1,
    },
    'linger.ms': opts.lingerMs ?? 5,
    'compression.type': opts.compression ?? DEFAULT_KAFKA_COMPRESSION,
    partitioner: PIPELINE_PARTITIONER,
  });
}

/** An idempotent (not transactional) producer, for the DLQ and other single writes. */
export function idempotentProducer(kafka: Kafka, compression: KafkaCompression = DEFAULT_KAFKA_COMPRESSION): Producer {
  return kafka.producer({
    kafkaJS: { idempotent: true, acks: -1 },
    'linger.ms': 5,
    'compression.type': compression,
    partitioner: PIPELINE_PARTITIONER,
  });
}

export interface ConsumerOptions {
  groupId: string;
  fromBeginning?: boolean;
  /** Exactly-once consumers read only committed transactions (default). */
  readCommitted?: boolean;
  autoCommit?: boolean;
  sessionTimeoutMs?: number;
  /**
   * Called on each group rebalance, before librdkafka applies it; awaited. On 'assign' it may
   * return the assignment with explicit start offsets (seek on assignment); on 'revoke' it runs
   * before the partitions are given up, so in-flight work can be settled and committed.
   */
  onRebalance?: RebalanceListener;
  /** Most messages handed to one `eachBatch` call (library default 32). */
  maxBatchSize?: number;
}

export interface AssignedPartition {
  topic: string;
  partition: number;
}

export type RebalanceListener = (
  kind: 'assign' | 'revoke',
  partitions: AssignedPartition[],
) => Promise<Array<AssignedPartition & { offset: number }> | void>;

/** Adapts a RebalanceListener to the library's `rebalance_cb` (librdkafka error codes -175/-174). */
function rebalanceCallback(listener: RebalanceListener) {
  return async (err: { code: number }, assignment: AssignedPartition[]) => {
    if (err.code === KafkaJS.ErrorCodes.ERR__ASSIGN_PARTITIONS)
      return (await listener('assign', assignment)) ?? undefined;
    if (err.code === KafkaJS.ErrorCodes.ERR__REVOKE_PARTITIONS) await listener('revoke', assignment);
    return undefined;
  };
}

export function createConsumer(kafka: Kafka, opts: ConsumerOptions): Consumer {
  return kafka.consumer({
    kafkaJS: {
      groupId: opts.groupId,
      fromBeginning: opts.fromBeginning ?? true,
      autoCommit: opts.autoCommit ?? false,
      readUncommitted: opts.readCommitted === false,
      sessionTimeout: opts.sessionTimeoutMs ?? 15000,
    },
    'fetch.wait.max.ms': 50,
    'queued.max.messages.kbytes': 32768,
    ...(opts.onRebalance ? { rebalance_cb: rebalanceCallback(opts.onRebalance) } : {}),
    ...(opts.maxBatchSize ? { 'js.consumer.max.batch.size': opts.maxBatchSize } : {}),
  });
}
