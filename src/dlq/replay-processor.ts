import type { Config } from '../config/load.js';
import { errorMessage, PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { createConsumer, createKafka, transactionalProducer } from '../kafka/client.js';
import { sleep } from '../runtime/retry.js';
import { DLQ_ATTEMPTS_HEADER } from '../processor/dlq.js';
import { parseDlqEntry } from '../runtime/sink-decode.js';

/**
 * Replays the processor's DLQ entries: the original bytes go back, with their original key, to the
 * topic they came from, for the processor to judge again; a header carries the entry's attempts,
 * so one the processor rejects again is parked with attempts + 1 (src/processor/dlq.ts).
 * Exactly once within Kafka: each DLQ batch is re-produced in one transaction together with the
 * replay group's offsets (the same consume-transform-produce pattern as the processor), so an
 * interrupted replay repeats nothing. An entry that holds only a prefix of its record
 * (`value_truncated`, src/core/dlq-size.ts) is not re-sent: it is logged and passed over.
 */

export interface ProcessorReplayResult {
  replayed: number;
}

export async function replayProcessorStage(
  config: Config,
  log: Logger,
  groupId: string,
  ends: Map<number, string>,
  from: Map<number, string>,
  timeoutMs: number,
): Promise<ProcessorReplayResult> {
  const dlqTopic = config.KAFKA_TOPIC_DLQ;
  const next = new Map<number, bigint>();
  for (const [p, end] of ends) next.set(p, BigInt(from.get(p) ?? '0') >= BigInt(end) ? BigInt(end) : -1n);
  const done = () => [...ends].every(([p, end]) => (next.get(p) ?? -1n) >= BigInt(end));
  if (done()) return { replayed: 0 };

  const kafka = createKafka(config, `${config.KAFKA_CLIENT_ID}-dlq-replay`);
  const producer = transactionalProducer(kafka, {
    transactionalId: `${groupId}-tx`,
    compression: config.KAFKA_COMPRESSION,
  });
  const consumer = createConsumer(kafka, { groupId, readCommitted: true, autoCommit: false });
  let replayed = 0;
  await producer.connect();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [dlqTopic] });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const end = BigInt(ends.get(batch.partition) ?? '0');
        const inRange = batch.messages.filter((m) => BigInt(m.offset) < end);
        const last = inRange[inRange.length - 1];
        if (!last) {
          next.set(batch.partition, end);
          return;
        }
        const out = new Map<
          string,
          Array<{ key: Buffer | null; value: Buffer | null; headers: Record<string, string> }>
        >();
        for (const m of inRange) {
          const e = parseDlqEntry(m.value);
          if (!e || e.stage !== 'processor') continue;
          if (e.value_truncated) {
            // Only a prefix of the record is in the entry: re-sending it would park garbage.
            log.warn(
              { topic: e.topic, partition: e.partition, offset: e.offset, value_bytes: e.value_bytes },
              'DLQ entry holds only a prefix of its record (too large for a DLQ entry): not replayed; the whole record is at its topic/partition/offset',
            );
            continue;
          }
          const list = out.get(e.topic) ?? [];
          const attempts = typeof e.attempts === 'number' && e.attempts > 0 ? e.attempts : 1;
          list.push({
            key:
              e.key_base64 !== undefined
                ? Buffer.from(e.key_base64, 'base64')
                : e.key === null
                  ? null
                  : Buffer.from(e.key),
            value: e.value_base64 === null ? null : Buffer.from(e.value_base64, 'base64'),
            headers: { [DLQ_ATTEMPTS_HEADER]: String(attempts) },
          });
          out.set(e.topic, list);
        }
        const nextOffset = (BigInt(last.offset) + 1n).toString();
        const tx = await producer.transaction();
        try {
          for (const [topic, messages] of out) await tx.send({ topic, messages });
          await tx.sendOffsets({
            consumer,
            topics: [{ topic: dlqTopic, partitions: [{ partition: batch.partition, offset: nextOffset }] }],
          });
          await tx.commit();
        } catch (err) {
          await tx.abort().catch(() => undefined);
          log.warn(
            { err: errorMessage(err), partition: batch.partition },
            'processor replay transaction failed; the batch will be read again',
          );
          throw err;
        }
        for (const list of out.values()) replayed += list.length;
        next.set(batch.partition, BigInt(nextOffset));
        if (BigInt(nextOffset) >= end) consumer.pause([{ topic: dlqTopic, partitions: [batch.partition] }]);
      },
    });
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline)
        throw new PipelineError('TIMEOUT', `processor replay did not finish within ${timeoutMs} ms`);
      await sleep(100);
    }
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
  }
  return { replayed };
}
