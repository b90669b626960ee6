import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TxnWriter } from '../../src/cdc/txn-writer.js';
import type { TxnError, TxnProducer } from '../../src/kafka/txn-producer.js';

/**
 * The TxnWriter's commit when the brokers are slow to answer (a broker lost, its leaders and the
 * transaction coordinator moving): a commit that fails retriable — and neither abortable nor fatal —
 * is called again and the transaction commits, without its records produced twice; an abortable
 * failure poisons the writer as before. A scripted producer stands in for librdkafka's.
 */

type Flags = Pick<TxnError, 'retriable' | 'abortable' | 'fatal'>;

function txnError(message: string, flags: Flags): TxnError {
  return Object.assign(new Error(message), flags);
}

class ScriptedProducer {
  readonly produced: string[] = [];
  commits = 0;
  aborts = 0;
  /** Failures the next commit calls throw, in order; then they succeed. */
  constructor(private readonly failures: TxnError[]) {}

  begin(): Promise<void> {
    return Promise.resolve();
  }
  tryProduce(_topic: string, key: string | Buffer | null): boolean {
    this.produced.push(String(key));
    return true;
  }
  commit(): Promise<void> {
    this.commits++;
    const err = this.failures.shift();
    return err ? Promise.reject(err) : Promise.resolve();
  }
  abort(): Promise<void> {
    this.aborts++;
    return Promise.resolve();
  }
}

const timedOut = () =>
  txnError('Failed to flush all outstanding messages within the API timeout', {
    retriable: true,
    abortable: false,
    fatal: false,
  });

test('a commit that timed out (retriable) is resumed and the transaction commits once', async () => {
  const producer = new ScriptedProducer([timedOut()]);
  const writer = new TxnWriter(producer as unknown as TxnProducer);
  writer.add('t', 'a', '{}');
  writer.add('t', 'b', '{}');
  await writer.commit([{ topic: 'pos', key: 'p', value: '{}' }]);
  assert.equal(producer.commits, 2, 'a timed-out call, then the one that completed');
  assert.deepEqual(producer.produced, ['a', 'b', 'p'], 'each record produced once');
  // Not poisoned: the next transaction goes through.
  writer.add('t', 'c', '{}');
  await writer.commit([{ topic: 'pos', key: 'p', value: '{}' }]);
  assert.equal(producer.commits, 3);
});

test('an abortable commit failure is not retried: the writer is poisoned', async () => {
  const abortable = txnError('transaction aborted by the coordinator', {
    retriable: false,
    abortable: true,
    fatal: false,
  });
  const producer = new ScriptedProducer([abortable]);
  const writer = new TxnWriter(producer as unknown as TxnProducer);
  writer.add('t', 'a', '{}');
  await assert.rejects(writer.commit([{ topic: 'pos', key: 'p', value: '{}' }]), /aborted by the coordinator/);
  assert.equal(producer.commits, 1);
  assert.throws(() => writer.add('t', 'b', '{}'), /aborted by the coordinator/);
});

test('a commit still timing out after every resume ends the writer with that error', async () => {
  const producer = new ScriptedProducer([timedOut(), timedOut(), timedOut()]);
  const writer = new TxnWriter(producer as unknown as TxnProducer);
  writer.add('t', 'a', '{}');
  await assert.rejects(writer.commit([{ topic: 'pos', key: 'p', value: '{}' }]), /API timeout/);
  assert.equal(producer.commits, 2, 'COMMIT_RESUME attempts');
});
