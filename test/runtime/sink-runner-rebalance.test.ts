import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import { sinkGroupId } from '../../src/runtime/sink-runner-options.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { createMemoryStore, memoryCount, memorySinkFactory } from '../helpers/memory-sink.js';
import { committedOffsets, enrichedEvent, eventMessages, highWatermarks, produce } from '../helpers/sink-harness.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * Scale-out: two runners of one sink share the partitions through their consumer group. Partitions
 * move while records flow (a second runner joins, then leaves); every record ends in the sink once.
 */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'test-sink-runner');
let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env.cleanup();
});

for (const variant of ['offsets', 'idempotent'] as const)
  test(
    `rebalances move partitions between runners without loss or double count (${variant} sink)`,
    { timeout: 90000 },
    async (t) => {
      const config = {
        ...env.config,
        KAFKA_TOPIC_ENRICHED: `${env.id}.rb-${variant}.enriched`,
        KAFKA_TOPIC_DLQ: `${env.id}.rb-${variant}.dlq`,
      };
      const topic = config.KAFKA_TOPIC_ENRICHED;
      const name = `mem-rb-${variant}`;
      const groupId = sinkGroupId(config, name);
      const store = createMemoryStore();
      // Slow-ish writes so batches are in flight when partitions move.
      const factory = memorySinkFactory({
        name,
        variant,
        store,
        batching: { maxRecords: 20, maxWaitMs: 30 },
        beforeWrite: () => sleep(5),
      });
      const settled = async (expected: number) => {
        const hwm = await highWatermarks(config, topic);
        await waitFor(
          `${expected} records written and every offset committed`,
          async () => {
            if (memoryCount(store, variant) < expected) return false;
            const c = await committedOffsets(config, groupId, topic);
            return [...hwm].every(([p, h]) => h === '0' || c.get(p) === h);
          },
          { timeoutMs: 40000, describe: () => ({ count: memoryCount(store, variant), hwm: Object.fromEntries(hwm) }) },
        );
      };
      const batch = (n: number) => eventMessages(Array.from({ length: n }, () => enrichedEvent()));

      const a = await startSinkRunner(config, factory, log);
      let b: Awaited<ReturnType<typeof startSinkRunner>> | undefined;
      try {
        await produce(config, topic, batch(300));
        b = await startSinkRunner(config, factory, log);
        await produce(config, topic, batch(300));
        await waitFor(
          'both runners own partitions',
          () => a.snapshot().partitions.length > 0 && (b?.snapshot().partitions.length ?? 0) > 0,
          { timeoutMs: 30000, describe: () => [a.snapshot(), b?.snapshot()] },
        );
        await produce(config, topic, batch(300));
        await settled(900);
        assert.equal(memoryCount(store, variant), 900);
        await b.stop();
        b = undefined;
        await produce(config, topic, batch(150));
        await waitFor(
          'the remaining runner owns every partition',
          () => a.snapshot().partitions.length === config.KAFKA_TOPIC_PARTITIONS,
          { timeoutMs: 30000, describe: () => a.snapshot() },
        );
        await settled(1050);
      } finally {
        await b?.stop();
        await a.stop();
      }
      assert.equal(memoryCount(store, variant), 1050, 'every record once');
      if (variant === 'offsets') {
        const keys = new Set(store.appended.map((r) => `${r.partition}:${r.offset}`));
        assert.equal(keys.size, 1050, 'no offset written twice');
      }
      const delivered = store.calls.filter((c) => !c.failed).reduce((n, c) => n + c.records, 0);
      t.diagnostic(
        `records delivered ${delivered} for 1050 events (re-deliveries absorbed by the sink: ${delivered - 1050})`,
      );
      assert.equal((await highWatermarks(config, config.KAFKA_TOPIC_DLQ)).get(0), '0');
    },
  );
