import type { Config } from '../config/load.js';
import type { PipelineError } from '../core/errors.js';
import type { DlqEntry } from '../core/types.js';
import { dlqReason, dlqValueFields } from '../core/dlq-size.js';
import { createKafka, DEFAULT_MESSAGE_MAX_BYTES, idempotentProducer, type Producer } from '../kafka/client.js';
import type { DlqOrigin } from './sink-decode.js';

/**
 * Writing to the dead-letter queue. `send` resolves only once Kafka has acknowledged every entry
 * (acks=all, idempotent producer): callers advance offsets only after it resolves, so a record is
 * never both un-delivered and un-parked. Delivery into the DLQ is at-least-once (a crash between
 * the DLQ write and the offset commit parks the record again); readers dedupe on
 * (stage, topic, partition, offset).
 */

export interface DlqFailure {
  origin: DlqOrigin;
  error: PipelineError;
  /** Delivery attempts made this round (1 for a decode or check failure). */
  attempts: number;
}

/**
 * Builds the entry for one failure; a replayed record counts rounds (its prior attempts + 1). The
 * entry fits in a record of `maxMessageBytes` (a value too large is kept as a flagged prefix:
 * src/core/dlq-size.ts).
 */
export function toDlqEntry(
  stage: string,
  f: DlqFailure,
  now: Date = new Date(),
  maxMessageBytes = DEFAULT_MESSAGE_MAX_BYTES,
): DlqEntry {
  return {
    reason: dlqReason(f.error.message),
    code: f.error.code,
    stage,
    topic: f.origin.topic,
    partition: f.origin.partition,
    offset: f.origin.offset,
    key: f.origin.key,
    ...dlqValueFields(f.origin.value, maxMessageBytes, f.origin.key === null ? 0 : Buffer.byteLength(f.origin.key)),
    failed_at: now.toISOString(),
    attempts: f.origin.replay ? f.origin.priorAttempts + 1 : f.origin.priorAttempts + f.attempts,
  };
}

export interface DlqWriter {
  readonly topic: string;
  /** Resolves when every entry is acknowledged by Kafka; throws (retriable) otherwise. */
  send(stage: string, failures: DlqFailure[]): Promise<void>;
  close(): Promise<void>;
}

export async function createDlqWriter(config: Config, clientSuffix: string): Promise<DlqWriter> {
  const producer: Producer = idempotentProducer(
    createKafka(config, `${config.KAFKA_CLIENT_ID}-${clientSuffix}-dlq`),
    config.KAFKA_COMPRESSION,
  );
  await producer.connect();
  const topic = config.KAFKA_TOPIC_DLQ;
  return {
    topic,
    async send(stage, failures) {
      if (failures.length === 0) return;
      const now = new Date();
      await producer.send({
        topic,
        messages: failures.map((f) => ({
          key: f.origin.key,
          value: JSON.stringify(toDlqEntry(stage, f, now, config.KAFKA_MESSAGE_MAX_BYTES)),
          headers: { stage, code: f.error.code },
        })),
      });
    },
    async close() {
      await producer.disconnect();
    },
  };
}
