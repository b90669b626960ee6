import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { TxnHungError } from '../../src/kafka/txn-call.js';
import type { GroupConsumer, TxnProducer } from '../../src/kafka/txn-producer.js';
import { processorMetrics } from '../../src/processor/metrics.js';
import { TransactionWriter } from '../../src/processor/transaction-writer.js';

/**
 * The processor's transaction writer when librdkafka never answers a call (kafka/txn-call.ts: its
 * send_offsets_to_transaction after a group coordinator's loss, librdkafka#5456): the batches are
 * rejected, the hung producer is neither aborted nor replaced in place (librdkafka still holds the
 * call and a worker thread) but fenced by a producer with its transactional id, opened and closed
 * (the broker aborts its open transaction at once), and the processor is told to stop with a
 * retriable TIMEOUT, so it is restarted. A producer failing fatally for another reason (fenced) is still replaced in place.
 */

interface Calls {
  aborts: number;
  renews: number;
  disconnects: number;
}

function producerFailingSendOffsets(calls: Calls, failure: unknown): TxnProducer {
  const producer = {
    begin: () => Promise.resolve(),
    produce: () => undefined,
    sendOffsets: () => Promise.reject(failure),
    commit: () => Promise.resolve(),
    abort: () => {
      calls.aborts++;
      return Promise.resolve();
    },
    disconnect: () => {
      calls.disconnects++;
      return Promise.resolve();
    },
  };
  return producer as unknown as TxnProducer;
}

function writer(calls: Calls, failure: unknown, fatal: unknown[], renewFailures = 0): TransactionWriter {
  return new TransactionWriter(
    producerFailingSendOffsets(calls, failure),
    {} as GroupConsumer,
    createLogger('silent', 'transaction-writer-hung-test'),
    processorMetrics(),
    (err) => fatal.push(err),
    { ratio: 0, maxGapMs: 0, fullAt: 1 },
    () => {
      calls.renews++;
      if (calls.renews <= renewFailures) return Promise.reject(new Error('Local: Broker transport failure'));
      return Promise.resolve(producerFailingSendOffsets(calls, new Error('unused')));
    },
  );
}

const batch = {
  records: [{ topic: 'out', key: 'k', value: '{}' }],
  offsets: [{ topic: 'in', partition: 0, offset: 7 }],
};

test('a hung send_offsets_to_transaction stops the processor for a restart, without touching the producer again', async () => {
  const calls: Calls = { aborts: 0, renews: 0, disconnects: 0 };
  const fatal: unknown[] = [];
  const w = writer(calls, new TxnHungError('send_offsets_to_transaction', 45_000), fatal);
  await assert.rejects(w.submit(batch), (err: unknown) => {
    assert.ok(err instanceof PipelineError);
    assert.equal(err.code, 'TIMEOUT');
    assert.equal(err.retriable, true, 'a restart helps');
    return true;
  });
  assert.equal(fatal.length, 1, 'the processor is told to stop once');
  const stop = fatal[0] as PipelineError;
  assert.equal(stop.code, 'TIMEOUT');
  assert.equal(stop.retriable, true);
  assert.match(stop.message, /librdkafka#5456/);
  assert.equal(calls.aborts, 0, 'no abort on a producer librdkafka still holds');
  assert.equal(calls.renews, 1, 'a producer with the same id is initialised once, fencing the hung one');
  assert.equal(calls.disconnects, 1, 'and closed at once: not used in its place, the process restarts');
  await assert.rejects(w.submit(batch), /transactional producer hung/, 'later batches are refused at once');
});

test('a producer fenced (fatal, answered) is still replaced in place and the processor goes on', async () => {
  const calls: Calls = { aborts: 0, renews: 0, disconnects: 0 };
  const fatal: unknown[] = [];
  const fenced = Object.assign(new Error('Broker: Producer fenced'), {
    fatal: true,
    abortable: false,
    retriable: false,
  });
  const w = writer(calls, fenced, fatal);
  await assert.rejects(w.submit(batch), (err: unknown) => err instanceof PipelineError && err.retriable);
  assert.equal(calls.renews, 1, 'replaced in place');
  assert.deepEqual(fatal, [], 'the processor goes on');
});

test('a hang while Kafka is unreachable: the fence is retried until Kafka answers, then the processor stops', async () => {
  const calls: Calls = { aborts: 0, renews: 0, disconnects: 0 };
  const fatal: unknown[] = [];
  const w = writer(calls, new TxnHungError('send_offsets_to_transaction', 15_000), fatal, 2);
  await assert.rejects(w.submit(batch), (err: unknown) => err instanceof PipelineError && err.code === 'TIMEOUT');
  assert.equal(calls.renews, 3, 'two failed fences (Kafka down), then one that succeeds');
  assert.equal(calls.disconnects, 1, 'the fencing producer closed');
  assert.equal(fatal.length, 1, 'the processor is told to stop only after the fence');
});
