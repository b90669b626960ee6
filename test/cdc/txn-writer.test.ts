import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TxnWriter } from '../../src/cdc/txn-writer.js';
import { createLogger } from '../../src/core/logger.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import { TxnProducer } from '../../src/kafka/txn-producer.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { readToEnd } from './helpers.js';

/**
 * The TxnWriter against the real broker, with a producer queue and a held-record limit far below
 * the transaction's size: a transaction much larger than both streams through (the queue is
 * drained by delivery-report polls, `room()` bounds what is held), and records added while a
 * commit runs land in the next transaction, in order.
 */

let env: TestEnv;
let producer: TxnProducer | undefined;

before(async () => {
  env = await createTestEnv();
  await ensureTopics(env.config);
});

after(async () => {
  await producer?.disconnect();
  await env?.cleanup();
});

test(
  'a transaction larger than the producer queue and the held limit; records added during a commit go to the next one',
  { timeout: 120_000 },
  async () => {
    const { config } = env;
    const topic = config.KAFKA_TOPIC_ENGAGEMENT_EVENTS;
    producer = await TxnProducer.connect({
      connection: config,
      clientId: `${config.KAFKA_CLIENT_ID}-writer-test`,
      transactionalId: `writer-test-${env.id}`,
      transactionTimeoutMs: 60_000,
      log: createLogger('warn', 'writer-test'),
      label: 'cdc',
      queueMaxMessages: 500,
    });
    const writer = new TxnWriter(producer, 300);
    const value = (i: number) => JSON.stringify({ i, pad: 'x'.repeat(200) });
    const BIG = 20_000;
    let waits = 0;
    for (let i = 0; i < BIG; i++) {
      writer.add(topic, `k${i % 7}`, value(i));
      if (writer.full) {
        waits++;
        await writer.room();
      }
    }
    assert.ok(waits > 0, 'the held limit was reached (memory bounded by room())');
    const first = writer.commit([{ topic, key: 'pos', value: '{"n":1}' }]);
    // Added before the first commit has finished: the second transaction.
    for (let i = BIG; i < BIG + 1000; i++) writer.add(topic, `k${i % 7}`, value(i));
    writer.add(topic, 'gone', null);
    const second = writer.commit([{ topic, key: 'pos', value: '{"n":2}' }]);
    await first;
    await second;

    const records = await readToEnd(config, topic, config.KAFKA_TOPIC_PARTITIONS);
    const data = records.filter((r) => r.key !== 'pos' && r.key !== 'gone');
    assert.equal(data.length, BIG + 1000);
    assert.equal(
      new Set(data.map((r) => (r.value as unknown as { i: number }).i)).size,
      BIG + 1000,
      'each record exactly once',
    );
    const byKey = new Map<string, number[]>();
    for (const r of data)
      byKey.set(r.key ?? '', [...(byKey.get(r.key ?? '') ?? []), (r.value as unknown as { i: number }).i]);
    for (const [key, seq] of byKey)
      assert.deepEqual(
        seq,
        [...seq].sort((a, b) => a - b),
        `order kept for ${key}`,
      );
    const positions = records.filter((r) => r.key === 'pos').map((r) => r.value as unknown as { n: number });
    assert.deepEqual(
      positions.map((p) => p.n),
      [1, 2],
    );
    const tombstone = records.find((r) => r.key === 'gone');
    assert.ok(tombstone && tombstone.value === null, 'a null value is a tombstone');
  },
);
