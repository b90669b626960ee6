import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TxnHungError, isHung, txnCall } from '../../src/kafka/txn-call.js';
import { sleep } from '../helpers/wait.js';

/**
 * kafka/txn-call.ts: a librdkafka transactional call settles with librdkafka's answer, and rejects
 * as hung once its own timeout plus the grace has passed without one (librdkafka#5456 leaves
 * send_offsets_to_transaction unanswered for good after a group coordinator's loss: seen in the
 * fault matrix's broker-restart row). The call is a stand-in here; the real one cannot be made to
 * hang on demand.
 */

test('an answered call resolves; an error answer rejects with its transactional flags', async () => {
  await txnCall('commit_transaction', 50, (cb) => setImmediate(() => cb(null)), 50);
  const librdkafkaError = Object.assign(new Error('Broker: Producer fenced'), { isFatal: true, code: 90 });
  await assert.rejects(
    txnCall('commit_transaction', 50, (cb) => setImmediate(() => cb(librdkafkaError)), 50),
    (err: unknown) => {
      const e = err as { fatal?: boolean; abortable?: boolean; retriable?: boolean; hung?: boolean };
      assert.equal(e.fatal, true);
      assert.equal(e.abortable, false);
      assert.equal(e.retriable, false);
      assert.equal(isHung(err), false, 'an answer, even a failure, is not a hang');
      return true;
    },
  );
});

test('a call never answered rejects as hung after its timeout plus the grace; a late answer is ignored', async () => {
  let answer: ((err: unknown) => void) | undefined;
  // The deadline's timer does not hold the process open (a real call's pending work does): this does.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    const started = performance.now();
    const call = txnCall('send_offsets_to_transaction', 100, (cb) => (answer = cb), 100);
    await assert.rejects(call, (err: unknown) => {
      assert.ok(err instanceof TxnHungError, `a TxnHungError, not ${String(err)}`);
      assert.equal(isHung(err), true);
      assert.equal(err.fatal, true, 'the producer is unusable');
      assert.equal(err.op, 'send_offsets_to_transaction');
      assert.match(err.message, /send_offsets_to_transaction did not answer/);
      assert.match(err.message, /librdkafka#5456/);
      return true;
    });
    const waited = performance.now() - started;
    assert.ok(waited >= 195, `rejected after ${waited.toFixed(0)} ms, not before timeout + grace (200 ms)`);
    answer?.(null); // librdkafka answering at last changes nothing
    await sleep(10);
  } finally {
    clearInterval(keepAlive);
  }
});

test('an answer just before the deadline wins over the hang', async () => {
  await txnCall('abort_transaction', 100, (cb) => setTimeout(() => cb(null), 150), 100);
});
