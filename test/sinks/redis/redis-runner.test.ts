import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../../src/core/logger.js';
import { registry } from '../../../src/core/metrics.js';
import { ensureTopics } from '../../../src/kafka/admin.js';
import { startSinkRunner } from '../../../src/runtime/sink-runner.js';
import { redisSinkFactory } from '../../../src/sinks/redis/index.js';
import type { RedisClient } from '../../../src/sinks/redis/lua-script.js';
import { RedisReader } from '../../../src/sinks/redis/read.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';
import { enrichedEvent, eventMessages, produce, waitCaughtUp } from '../../helpers/sink-harness.js';
import { waitFor } from '../../helpers/wait.js';
import { adminClient, wipe } from './redis-fixtures.js';

/**
 * The Redis sink under the real sink runner and Kafka: Redis loses the sink's keys while it runs
 * (simulated by deleting this test's prefix; a real FLUSHALL is the same condition for the sink),
 * the sink reports SINK_STATE_LOST, the runner re-positions from storedOffsets (none) and
 * startPosition (now - window), and the window is rebuilt from Kafka with every event counted once.
 */

let env: TestEnv;
let admin: RedisClient;
const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'redis-runner-test');

before(async () => {
  env = await createTestEnv();
  await ensureTopics(env.config);
  admin = await adminClient(env.config);
});

after(async () => {
  await wipe(admin, env.config.REDIS_KEY_PREFIX);
  await admin.close();
  await env.cleanup();
});

async function stateLostCount(): Promise<number> {
  const m = await registry.getSingleMetric('engage_sink_redis_state_lost_total')?.get();
  return m?.values[0]?.value ?? 0;
}

describe('redis sink under the runner', () => {
  it('rebuilds the window from Kafka after a wipe, counting every event once', { timeout: 60_000 }, async () => {
    const topic = env.config.KAFKA_TOPIC_ENRICHED;
    const reader = new RedisReader(admin, { prefix: env.config.REDIS_KEY_PREFIX, windowMinutes: 10, cacheMs: 0 });
    const first = Array.from({ length: 30 }, (_, i) => enrichedEvent({ content_id: `c${i % 3}` }));
    await produce(env.config, topic, [...eventMessages(first.slice(0, 15), 0), ...eventMessages(first.slice(15), 1)]);
    const runner = await startSinkRunner(env.config, redisSinkFactory, log, {
      batching: { maxRecords: 50, maxWaitMs: 50 },
    });
    runner.done.catch(() => undefined);
    try {
      await waitFor('the first events are counted', async () => (await reader.windowCount()) === 30, 30_000);
      const lostBefore = await stateLostCount();
      assert.ok((await wipe(admin, env.config.REDIS_KEY_PREFIX)) > 0);
      const second = Array.from({ length: 20 }, (_, i) => enrichedEvent({ content_id: `c${i % 3}` }));
      // A backfill-style re-send of five of the first events rides along: still counted once.
      const resent = first.slice(0, 5).map((e) => ({ ...e, origin: 'backfill' as const }));
      await produce(env.config, topic, [...eventMessages(second, 0), ...eventMessages(resent, 2)]);
      await waitFor('the window is rebuilt', async () => (await reader.windowCount()) >= 50, 30_000);
      await waitCaughtUp(runner, env.config, topic, 30_000);
      assert.equal(await reader.windowCount(), 50, 'every event once: rebuilt, new and re-sent');
      assert.ok((await stateLostCount()) > lostBefore, 'the sink reported the state lost');
      const top = await reader.topContent({ limit: 5, by: 'events' });
      assert.deepEqual(
        top.map((e) => e.events).reduce((a, b) => a + b, 0),
        50,
      );
      assert.equal(
        (await reader.contentStats('c0'))?.total_engagement_seconds,
        42 * top.find((e) => e.content_id === 'c0')!.events,
      );
    } finally {
      await runner.stop();
    }
  });
});
