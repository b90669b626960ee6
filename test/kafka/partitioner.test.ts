import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import { createTopics } from '../../src/kafka/admin.js';
import { createKafka, idempotentProducer, transactionalProducer } from '../../src/kafka/client.js';
import { TxnProducer } from '../../src/kafka/txn-producer.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { readTopic } from '../processor/kafka-helpers.js';

/**
 * One partitioner for every producer of the pipeline (client.ts PIPELINE_PARTITIONER): a key
 * written by the KafkaJS-style producers (the DLQ writer, `engage dlq replay --stage processor`)
 * lands on the partition the per-event producer (CDC, processor) puts it on. Without it the
 * KafkaJS layer picks murmur2 and a replayed event went to another partition than its original.
 */

const keys = Array.from({ length: 40 }, (_, i) => `{"id":"${1000 + i * 7}"}`);

describe('the pipeline partitioner', { timeout: 60000 }, () => {
  let env: TestEnv;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env?.cleanup();
  });

  it('places each key on the same partition whichever producer writes it', async () => {
    const c = env.config;
    const topics = ['raw', 'kjs-txn', 'kjs-idem'].map((t) => `${c.KAFKA_TOPIC_ENGAGEMENT_EVENTS}.${t}`);
    await createTopics(
      c,
      c.KAFKA_CLIENT_ID,
      topics.map((topic) => ({ topic, numPartitions: 6, compacted: false })),
    );
    const [raw, kjsTxn, kjsIdem] = topics as [string, string, string];

    const txn = await TxnProducer.connect({
      connection: c,
      clientId: 'test-partitioner',
      transactionalId: `test-partitioner-${process.pid}`,
      transactionTimeoutMs: 30000,
      log: createLogger('error', 'test'),
    });
    await txn.begin();
    for (const k of keys) txn.produce(raw, k, 'v');
    await txn.commit();
    await txn.disconnect();

    const kafka = createKafka(c, 'test-partitioner-kjs');
    const tp = transactionalProducer(kafka, { transactionalId: `test-partitioner-kjs-${process.pid}` });
    await tp.connect();
    const tx = await tp.transaction();
    await tx.send({ topic: kjsTxn, messages: keys.map((key) => ({ key, value: 'v' })) });
    await tx.commit();
    await tp.disconnect();
    const ip = idempotentProducer(kafka);
    await ip.connect();
    await ip.send({ topic: kjsIdem, messages: keys.map((key) => ({ key, value: 'v' })) });
    await ip.disconnect();

    const placement = async (topic: string) =>
      new Map((await readTopic(c.kafkaBrokers, topic)).map((m) => [String(m.key), m.partition]));
    const expected = await placement(raw);
    assert.equal(expected.size, keys.length);
    assert.ok(new Set(expected.values()).size > 1, 'the keys spread over several partitions');
    assert.deepEqual(await placement(kjsTxn), expected, 'the KafkaJS-style transactional producer');
    assert.deepEqual(await placement(kjsIdem), expected, 'the KafkaJS-style idempotent producer');
  });
});
