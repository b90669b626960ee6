import { RdKafka } from '@confluentinc/kafka-javascript';
import { noteStuckNativeCall } from '../core/exit.js';
import type { Logger } from '../core/logger.js';
import { DEFAULT_KAFKA_COMPRESSION, type KafkaCompression } from '../config/schema.js';
import { connectionProps, PIPELINE_PARTITIONER, type KafkaConnection } from './client.js';
import { isHung, toTxnError, txnCall, type TxnError } from './txn-call.js';

export type { TxnError } from './txn-call.js';

/**
 * A transactional producer on librdkafka's plain producer (same library as ./client.ts, one level
 * down) without per-message delivery reports. Inside a transaction a per-message report adds
 * nothing — commit succeeds only if every message was delivered, and fails (abortable) otherwise —
 * while the KafkaJS-style `send` allocates a promise and a report per message: measured, this path
 * costs about a fifth less CPU per event in the processor (docs/processor.md) and half the produce
 * CPU in the CDC (docs/cdc.md). Used by the processor and the CDC.
 *
 * Errors are librdkafka errors normalised to the flags the callers act on: `fatal` (producer
 * unusable, e.g. fenced by a newer instance with the same transactional id), `abortable` (abort,
 * then redo) and `retriable` (the same call may be repeated).
 */

export interface TxnProducerOptions {
  /** Where and how to reach Kafka (a Config is one). */
  connection: KafkaConnection;
  clientId: string;
  transactionalId: string;
  transactionTimeoutMs: number;
  log: Logger;
  /** Who owns it, for log lines (default `processor`). */
  label?: string;
  /** librdkafka's local queue bound (`queue.buffering.max.messages`, default 200,000); a full
   *  queue makes `tryProduce` return false and `produce` throw. */
  queueMaxMessages?: number;
  /** The same bound in KiB (`queue.buffering.max.kbytes`, librdkafka's default 1 GiB). */
  queueMaxKbytes?: number;
  /** KAFKA_COMPRESSION (default lz4). */
  compression?: KafkaCompression;
  /** librdkafka's `linger.ms` (default DEFAULT_TXN_LINGER_MS). */
  lingerMs?: number;
}

export interface PartitionOffset {
  topic: string;
  partition: number;
  offset: number;
}

type RawProducer = InstanceType<typeof RdKafka.Producer>;
/** librdkafka's consumer of the group, whose group metadata fences the offsets (BatchConsumer.groupClient). */
export type GroupConsumer = InstanceType<typeof RdKafka.KafkaConsumer>;

/** String values up to this many UTF-8 bytes are encoded into one reused buffer (librdkafka copies on produce: RK_MSG_COPY). */
const SCRATCH_BYTES = 1 << 20;

/** How long a transactional call (commit, abort, init) may wait on the brokers before it fails. */
export const TXN_OP_TIMEOUT_MS = 30000;
/**
 * The same for `send_offsets_to_transaction`, and the grace past it before the call counts as hung
 * (./txn-call.ts): 15 s in all, not 45, because this is the call librdkafka leaves unanswered after
 * a group coordinator's loss (librdkafka#5456), and the pipeline waits for as long as it goes
 * unnoticed. A call that times out without hanging (a coordinator still moving after 10 s) fails
 * retriable: its transaction is aborted and its batches are re-read (docs/processor.md).
 */
const SEND_OFFSETS_TIMEOUT_MS = 10_000;
const SEND_OFFSETS_GRACE_MS = 5_000;
/**
 * librdkafka's `linger.ms`. A transaction's commit flushes at once whatever the linger, so a long
 * linger costs no latency at the commit: it only stops a quiet stream from sending one produce
 * request per few records mid-transaction (each also costing the broker a transaction verification
 * round trip). A busy stream still sends as soon as a batch fills. A producer whose records wait in
 * an open transaction for the commit pacer (the CDC) passes a short one instead.
 */
export const DEFAULT_TXN_LINGER_MS = 100;
/**
 * librdkafka's `retry.backoff.ms` (its default 100; doubling up to `retry.backoff.max.ms`, 1 s).
 * A transaction's end returns before its coordinator has written the markers; a transaction begun
 * right after it (both transactional stages begin the next one as soon as the previous commit
 * returns) has its first AddPartitionsToTxn or AddOffsetsToTxn answered CONCURRENT_TRANSACTIONS
 * until then, and each such answer is retried after this backoff. Measured on this stack
 * (2026-12-07, librdkafka's `eos` debug log): 58 such answers in 120 back-to-back transactions of
 * a processor-like producer, each a 100 ms wait at the default. The Java producer retries this
 * case after 20 ms as well (KAFKA-5477).
 */
const TXN_RETRY_BACKOFF_MS = 20;
/** librdkafka's RD_KAFKA_RESP_ERR__QUEUE_FULL. */
const ERR_QUEUE_FULL = -184;

export class TxnProducer {
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);

  /** Set once a call went unanswered (./txn-call.ts): every later call fails with it. */
  private hung: TxnError | undefined;

  private constructor(private readonly producer: RawProducer) {}

  /** Connects and initialises transactions (fencing an earlier producer with the same id). */
  static async connect(opts: TxnProducerOptions): Promise<TxnProducer> {
    const producer = new RdKafka.Producer({
      ...connectionProps(opts.connection),
      'client.id': opts.clientId,
      'transactional.id': opts.transactionalId,
      'transaction.timeout.ms': opts.transactionTimeoutMs,
      'enable.idempotence': true,
      acks: -1,
      'linger.ms': opts.lingerMs ?? DEFAULT_TXN_LINGER_MS,
      'retry.backoff.ms': TXN_RETRY_BACKOFF_MS,
      'compression.type': opts.compression ?? DEFAULT_KAFKA_COMPRESSION,
      'queue.buffering.max.messages': opts.queueMaxMessages ?? 200000,
      ...(opts.queueMaxKbytes ? { 'queue.buffering.max.kbytes': opts.queueMaxKbytes } : {}),
      dr_cb: false,
      partitioner: PIPELINE_PARTITIONER,
    });
    const label = opts.label ?? 'processor';
    producer.on('event.error', (err) => opts.log.warn({ err: err.message, code: err.code }, `${label} producer error`));
    await new Promise<void>((resolve, reject) =>
      producer.connect({ timeout: 10000 }, (err) => (err ? reject(toTxnError(err)) : resolve())),
    );
    try {
      await txnCall('init_transactions', TXN_OP_TIMEOUT_MS, (cb) => producer.initTransactions(TXN_OP_TIMEOUT_MS, cb));
    } catch (err) {
      if (!isHung(err)) await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
      throw err;
    }
    return new TxnProducer(producer);
  }

  begin(): Promise<void> {
    return this.call('begin_transaction', (cb) => this.producer.beginTransaction(cb));
  }

  /** Queues one message in the open transaction (synchronous; throws when the local queue is full).
   *  A null value is a tombstone. A string value is encoded into a scratch buffer reused by every
   *  call (librdkafka copies key and value before `produce` returns), not a new Buffer per message. */
  produce(topic: string, key: string | null, value: Buffer | string | null): void {
    const bytes =
      typeof value !== 'string'
        ? value
        : value.length * 3 <= SCRATCH_BYTES
          ? this.scratch.subarray(0, this.scratch.write(value, 0, 'utf8'))
          : Buffer.from(value);
    try {
      this.producer.produce(topic, null, bytes, key);
    } catch (err) {
      throw toTxnError(err);
    }
  }

  /**
   * As `produce`, but a full local queue returns false (nothing queued) instead of throwing.
   *
   * A message leaves librdkafka's queue count only once its delivery report has been served by a
   * poll (the binding always installs a report callback, even with `dr_cb: false`), and nothing
   * polls this producer but `commit` — so a transaction longer than the queue would stay full
   * forever. On a full queue the delivered messages' reports are therefore served here (cheap: no
   * JavaScript callback runs) and the produce is tried once more.
   */
  tryProduce(topic: string, key: string | Buffer | null, value: Buffer | null): boolean {
    try {
      this.producer.produce(topic, null, value, key);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code !== ERR_QUEUE_FULL) throw toTxnError(err);
    }
    this.producer.poll();
    try {
      this.producer.produce(topic, null, value, key);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === ERR_QUEUE_FULL) return false;
      throw toTxnError(err);
    }
  }

  /** Adds consumer offsets to the open transaction, with the consumer's group metadata (KIP-447). */
  sendOffsets(offsets: PartitionOffset[], consumer: GroupConsumer): Promise<void> {
    return this.call(
      'send_offsets_to_transaction',
      (cb) => this.producer.sendOffsetsToTransaction(offsets, consumer, SEND_OFFSETS_TIMEOUT_MS, cb),
      SEND_OFFSETS_TIMEOUT_MS,
      SEND_OFFSETS_GRACE_MS,
    );
  }

  commit(): Promise<void> {
    return this.call('commit_transaction', (cb) => this.producer.commitTransaction(TXN_OP_TIMEOUT_MS, cb));
  }

  abort(): Promise<void> {
    return this.call('abort_transaction', (cb) => this.producer.abortTransaction(TXN_OP_TIMEOUT_MS, cb));
  }

  /** Closes the producer; a hung one is left as it is (librdkafka still holds its call). */
  disconnect(): Promise<void> {
    if (this.hung) return Promise.resolve();
    return new Promise<void>((resolve) => this.producer.disconnect(() => resolve()));
  }

  private async call(
    op: string,
    fn: (cb: (err: unknown) => void) => void,
    timeoutMs = TXN_OP_TIMEOUT_MS,
    graceMs?: number,
  ): Promise<void> {
    if (this.hung) throw this.hung;
    try {
      await txnCall(op, timeoutMs, fn, graceMs);
    } catch (err) {
      if (isHung(err)) {
        this.hung = err as TxnError;
        noteStuckNativeCall(`librdkafka's ${op}`);
      }
      throw err;
    }
  }
}
