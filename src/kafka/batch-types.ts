import type { RdKafka } from '@confluentinc/kafka-javascript';
import type { Logger } from '../core/logger.js';
import type { KafkaConnection } from './client.js';

/** What a BatchConsumer (batch-consumer.ts) hands over and is configured with. */

export type KafkaMessage = RdKafka.Message;

export interface PartitionBatch {
  topic: string;
  partition: number;
  messages: KafkaMessage[];
  /** The offset to commit once done: the last message's offset + 1. */
  nextOffset: number;
  /** The partition's high watermark as last fetched (lag = highWatermark − nextOffset); NaN if unknown. */
  highWatermark: number;
  /** performance.now() when the consume round that fetched the batch's last message returned:
   *  every message of the batch was readable (committed, under read_committed) by then. */
  fetchedAt: number;
}

export type BatchHandler = (batch: PartitionBatch) => Promise<void>;

export interface BatchConsumerOptions {
  /** Where and how to reach Kafka (a Config is one). */
  connection: KafkaConnection;
  clientId: string;
  groupId: string;
  topic: string;
  maxBatch: number;
  /**
   * Messages a partition may hold before it is paused (default maxBatch). An owner whose handler
   * only queues takes everything each round, and pausing would make librdkafka drop its prefetch.
   */
  pauseAt?: number;
  /**
   * Messages held across all partitions past which the loop stops consuming until a batch is
   * taken (default: no bound but pauseAt per partition). Not polling leaves the next messages in
   * librdkafka's bounded prefetch queue, whereas pausing a partition drops its prefetch and costs
   * a fetch round trip after the resume (measured as ~100 ms without a batch to hand over, a fifth
   * of the processor's time, docs/processor.md). Rebalance events wait too (they are served
   * inside consume calls), at most MAX_POLL_GAP_MS.
   */
  maxBuffered?: number;
  concurrency: number;
  sessionTimeoutMs: number;
  log: Logger;
  readCommitted?: boolean;
  onAssign?: (partitions: number[]) => void;
  /** Awaited on assignment: explicit start offsets (partitions left out start at their committed offset). */
  startOffsets?: (partitions: number[]) => Promise<Map<number, number> | undefined>;
  /** Awaited before revoked partitions are given up (after their running batches settled). */
  onRevoke?: (partitions: number[]) => Promise<void>;
  /**
   * For owners that commit group offsets outside transactions: offsets given to `storeOffset` are
   * committed by librdkafka every this many ms (its auto-commit of the offset store, which also
   * commits on revocation and close), one request for every partition. Unset: nothing is committed
   * but what a transaction commits.
   */
  commitIntervalMs?: number;
  /**
   * Called after each consume round for every partition with nothing held here and no batch
   * running, with the consumer's position: each offset before it was handed over in a batch that
   * has finished, or is no record for this reader (a transaction marker, an aborted transaction's
   * record). An owner whose handed-over records are all settled is settled up to `position` (the
   * lag of a transactional topic's trailing marker). librdkafka forgets the position on assign and
   * seek until it consumes again, so it never predates a seek. `highWatermark`: as last fetched.
   */
  onCaughtUp?: (partition: number, position: number, highWatermark: number) => void;
}
