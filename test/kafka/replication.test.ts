import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import { createTopics, ensureTopics, pipelineTopics } from '../../src/kafka/admin.js';
import { createKafka } from '../../src/kafka/client.js';
import { clusterBrokers } from '../../src/kafka/cluster.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * The replication of the topics the pipeline creates, on the shared one-broker stack: derived from
 * the brokers the cluster lists (1 here, so factor 1), and a KAFKA_REPLICATION_FACTOR the cluster
 * cannot hold refused as SERVICE_MISCONFIGURED, naming the setting. The three-broker case (factor
 * 3, min ISR 2) is proven by test/e2e/replicated-kafka.e2e.test.ts on a cluster of its own.
 */

describe('topic replication', { timeout: 60000 }, () => {
  let env: TestEnv;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env?.cleanup();
  });

  it('follows the brokers the cluster lists: one broker, factor 1', async () => {
    const brokers = await clusterBrokers(env.config);
    assert.equal(brokers.length, 1, JSON.stringify(brokers));
    await ensureTopics(env.config);
    const admin = createKafka(env.config, 'test-replication').admin();
    await admin.connect();
    try {
      const md = await admin.fetchTopicMetadata({ topics: pipelineTopics(env.config).map((t) => t.topic) });
      assert.equal(md.length, 5);
      for (const t of md) for (const p of t.partitions) assert.deepEqual(p.replicas, [brokers[0]?.id], t.name);
    } finally {
      await admin.disconnect();
    }
  });

  it('refuses a KAFKA_REPLICATION_FACTOR above the brokers as SERVICE_MISCONFIGURED, creating nothing', async () => {
    const topic = `${env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS}.rf3`;
    await assert.rejects(
      createTopics(env.config, env.config.KAFKA_CLIENT_ID, [{ topic, numPartitions: 1, compacted: false }], 3),
      (err: unknown) =>
        err instanceof PipelineError &&
        err.code === 'SERVICE_MISCONFIGURED' &&
        /KAFKA_REPLICATION_FACTOR/.test(err.message) &&
        /replication factor 3/.test(err.message),
    );
    const admin = createKafka(env.config, 'test-replication').admin();
    await admin.connect();
    try {
      assert.ok(!(await admin.listTopics()).includes(topic));
    } finally {
      await admin.disconnect();
    }
  });
});
