import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import { createKafka, transactionalProducer } from '../../src/kafka/client.js';
import { sinkGroupId } from '../../src/runtime/sink-runner-options.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { createMemoryStore, memoryCount, memorySinkFactory } from '../helpers/memory-sink.js';
import {
  committedOffsets,
  enrichedEvent,
  eventMessages,
  highWatermarks,
  type RawMessage,
} from '../helpers/sink-harness.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The enriched topic is written in Kafka transactions, so each partition's last offset is a
 * transaction marker (and an aborted transaction leaves records no read_committed reader gets).
 * An idle runner must count those as settled: lag 0 and the group's offsets at the high
 * watermarks, not one short per partition forever — while every real record is still delivered.
 */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'test-sink-markers');
let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env.cleanup();
});

test(
  'an idle runner settles trailing transaction markers and aborted records: lag 0, group offsets at the high watermarks',
  { timeout: 90000 },
  async () => {
    const config = {
      ...env.config,
      KAFKA_TOPIC_ENRICHED: `${env.id}.markers.enriched`,
      KAFKA_TOPIC_DLQ: `${env.id}.markers.dlq`,
    };
    const producer = transactionalProducer(createKafka(config, `${config.KAFKA_CLIENT_ID}-test-markers`), {
      transactionalId: `${env.id}-markers`,
    });
    const inTxn = async (messages: RawMessage[], commit: boolean) => {
      const tx = await producer.transaction();
      await tx.send({ topic: config.KAFKA_TOPIC_ENRICHED, messages });
      await (commit ? tx.commit() : tx.abort());
    };
    const store = createMemoryStore();
    const factory = memorySinkFactory({
      name: 'mem-markers',
      variant: 'idempotent',
      store,
      batching: { maxRecords: 100, maxWaitMs: 100 },
    });
    const runner = await startSinkRunner(config, factory, log, { lagRefreshMs: 200 });
    const lagZeroAtHighWatermarks = async (what: string) => {
      const hwm = await highWatermarks(config, config.KAFKA_TOPIC_ENRICHED);
      await waitFor(
        what,
        () => {
          const snap = runner.snapshot();
          return (
            snap.lag === 0 &&
            [...hwm].every(([p, h]) => snap.partitions.find((x) => x.partition === p)?.nextOffset === h)
          );
        },
        { timeoutMs: 20000, describe: () => ({ hwm: Object.fromEntries(hwm), snap: runner.snapshot() }) },
      );
      return hwm;
    };
    let hwm: Map<number, string>;
    try {
      await producer.connect();
      const first = Array.from({ length: 30 }, () => enrichedEvent());
      await inTxn(eventMessages(first.slice(0, 10), 0), true);
      await inTxn(eventMessages(first.slice(10, 20), 1), true);
      await inTxn(
        eventMessages(
          Array.from({ length: 5 }, () => enrichedEvent()),
          0,
        ),
        false,
      );
      await inTxn(eventMessages(first.slice(20), 0), true);
      await waitFor('the 30 committed events are written', () => memoryCount(store, 'idempotent') === 30, {
        timeoutMs: 20000,
        describe: () => runner.snapshot(),
      });
      // Partition 0: 10 records, a marker, 5 aborted records and their marker, 10 records, a marker.
      hwm = await lagZeroAtHighWatermarks('the idle runner has settled every partition up to its high watermark');
      assert.equal(hwm.get(0), '28');
      assert.equal(hwm.get(1), '11');

      // Records after an idle spell are all delivered: settling past the markers skipped none.
      const second = Array.from({ length: 12 }, () => enrichedEvent());
      await inTxn(eventMessages(second.slice(0, 6), 0), true);
      await inTxn(eventMessages(second.slice(6), 1), true);
      await waitFor('the 12 later events are written', () => memoryCount(store, 'idempotent') === 42, {
        timeoutMs: 20000,
        describe: () => runner.snapshot(),
      });
      hwm = await lagZeroAtHighWatermarks('settled again after the second round');
    } finally {
      await runner.stop();
      await producer.disconnect();
    }
    const written = new Set([...store.byId.keys()]);
    assert.equal(written.size, 42, 'exactly the committed events');
    assert.equal(runner.snapshot().recordsIn, 42, 'no aborted record reached the runner');
    const committed = await committedOffsets(config, sinkGroupId(config, 'mem-markers'), config.KAFKA_TOPIC_ENRICHED);
    for (const [p, h] of hwm)
      if (h !== '0') assert.equal(committed.get(p), h, `partition ${p}: the group's offset is its high watermark`);
  },
);
