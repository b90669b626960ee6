import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import { registry } from '../../src/core/metrics.js';
import { sinkGroupId } from '../../src/runtime/sink-runner-options.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import { createTestEnv, ownTopics, type TestEnv } from '../helpers/env.js';
import { createMemoryStore, memoryCount, memorySinkFactory } from '../helpers/memory-sink.js';
import {
  committedOffsets,
  enrichedEvent,
  eventMessages,
  highWatermarks,
  produce,
  waitCaughtUp,
} from '../helpers/sink-harness.js';
import { waitFor } from '../helpers/wait.js';

/** The sink runner on the real stack: batching by size and by time, close drains, backpressure. */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'test-sink-runner');
let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env.cleanup();
});

/** A test's own topics (ownTopics): tests of this file never see each other's records. */
const configFor = (name: string) => ownTopics(env, name);

test(
  'batches by size: full batches are written at once, the rest waits; close drains it',
  { timeout: 60000 },
  async () => {
    const config = configFor('size');
    const store = createMemoryStore();
    const factory = memorySinkFactory({
      name: 'mem-size',
      variant: 'offsets',
      store,
      batching: { maxRecords: 10, maxWaitMs: 600000 },
    });
    const runner = await startSinkRunner(config, factory, log);
    try {
      await produce(
        config,
        config.KAFKA_TOPIC_ENRICHED,
        eventMessages(
          Array.from({ length: 25 }, () => enrichedEvent()),
          0,
        ),
      );
      await waitFor('two full batches are written', () => memoryCount(store, 'offsets') === 20, {
        timeoutMs: 20000,
        describe: () => runner.snapshot(),
      });
      await waitFor(
        'the remaining 5 are queued',
        () => runner.snapshot().partitions.find((p) => p.partition === 0)?.queued === 5,
      );
      assert.deepEqual(
        store.calls.filter((c) => c.partition === 0).map((c) => c.records),
        [10, 10],
      );
      assert.equal(memoryCount(store, 'offsets'), 20, 'the partial batch is not written before its time is up');
    } finally {
      await runner.stop();
    }
    assert.deepEqual(
      store.calls.filter((c) => c.partition === 0).map((c) => c.records),
      [10, 10, 5],
      'stop writes the pending batch',
    );
    assert.equal(memoryCount(store, 'offsets'), 25);
    assert.equal(store.offsets.get(`${config.KAFKA_TOPIC_ENRICHED}:0`), '25');
    const committed = await committedOffsets(config, sinkGroupId(config, 'mem-size'), config.KAFKA_TOPIC_ENRICHED);
    assert.equal(committed.get(0), '25', 'the drained batch is committed');
    assert.equal(factory.sinks[0]?.closed, true, 'the sink is closed after the drain');
  },
);

test(
  'batches by time: a partial batch is written once maxWaitMs has passed, while running',
  { timeout: 60000 },
  async () => {
    const config = configFor('time');
    const store = createMemoryStore();
    const factory = memorySinkFactory({
      name: 'mem-time',
      variant: 'idempotent',
      store,
      batching: { maxRecords: 1000, maxWaitMs: 200 },
    });
    const runner = await startSinkRunner(config, factory, log);
    try {
      const events = Array.from({ length: 7 }, () => enrichedEvent());
      await produce(config, config.KAFKA_TOPIC_ENRICHED, eventMessages(events));
      await waitFor('all 7 events are written', () => memoryCount(store, 'idempotent') === 7, {
        timeoutMs: 20000,
        describe: () => runner.snapshot(),
      });
      assert.equal(runner.snapshot().stopping, false, 'written by the timer, not by a drain');
      assert.ok(
        store.calls.every((c) => c.records < 1000),
        'no batch reached the size limit',
      );
      await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
      const hwm = await highWatermarks(config, config.KAFKA_TOPIC_ENRICHED);
      await waitFor('offsets are committed', async () => {
        const c = await committedOffsets(config, sinkGroupId(config, 'mem-time'), config.KAFKA_TOPIC_ENRICHED);
        return [...hwm].every(([p, h]) => h === '0' || c.get(p) === h);
      });
      const snap = runner.snapshot();
      assert.equal(snap.recordsIn, 7);
      assert.equal(snap.recordsOut, 7);
      assert.equal(snap.lag, 0);
      const out = await registry.getSingleMetric('engage_sink_records_out_total')?.get();
      assert.equal(out?.values.find((v) => v.labels.sink === 'mem-time')?.value, 7);
      const fresh = await registry.getSingleMetric('engage_sink_freshness_seconds')?.get();
      const count = fresh?.values.find(
        (v) =>
          v.labels.sink === 'mem-time' &&
          (v as { metricName?: string }).metricName === 'engage_sink_freshness_seconds_count',
      );
      assert.equal(count?.value, 7, 'freshness observed once per written record');
    } finally {
      await runner.stop();
    }
  },
);

test('a slow sink pauses its own partition: memory stays bounded, and it resumes', { timeout: 60000 }, async () => {
  const config = configFor('slow');
  const store = createMemoryStore();
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const factory = memorySinkFactory({
    name: 'mem-slow',
    variant: 'offsets',
    store,
    batching: { maxRecords: 5, maxWaitMs: 20 },
    beforeWrite: () => gate,
  });
  const runner = await startSinkRunner(config, factory, log, { maxQueuedPerPartition: 10 });
  const total = 200;
  try {
    await produce(
      config,
      config.KAFKA_TOPIC_ENRICHED,
      eventMessages(
        Array.from({ length: total }, () => enrichedEvent()),
        0,
      ),
    );
    await waitFor(
      'partition 0 is paused',
      () => runner.snapshot().partitions.find((p) => p.partition === 0)?.paused === true,
      { timeoutMs: 20000, describe: () => runner.snapshot() },
    );
    const snap = runner.snapshot();
    const p0 = snap.partitions.find((p) => p.partition === 0);
    // Bound: the pause threshold, plus one fetched batch (32 messages) that arrived as it paused.
    assert.ok((p0?.queued ?? 0) <= 10 + 32, `queued ${p0?.queued} stays bounded`);
    assert.ok(snap.recordsIn < total, `consumed ${snap.recordsIn} of ${total}: the consumer stopped pulling`);
    assert.equal(memoryCount(store, 'offsets'), 0, 'nothing written while the sink is stuck');
    // The heartbeat's view says where the backlog sits and which partition is held.
    const status = runner.status();
    const byPartition = status.lag_by_partition as Record<string, number>;
    assert.ok((byPartition['0'] ?? 0) > 0, `partition 0 shows its backlog: ${JSON.stringify(byPartition)}`);
    assert.equal(
      Object.values(byPartition).reduce((a, b) => a + b, 0),
      status.lag,
      'the per-partition lags add up to the lag',
    );
    assert.ok((status.paused as number[]).includes(0));
    release();
    await waitFor('every record is written', () => memoryCount(store, 'offsets') === total, {
      timeoutMs: 30000,
      describe: () => runner.snapshot(),
    });
    await waitFor(
      'the partition is resumed',
      () => runner.snapshot().partitions.find((p) => p.partition === 0)?.paused === false,
    );
    assert.ok(runner.snapshot().pauses >= 1);
    const offsets = store.appended.map((r) => Number(r.offset));
    assert.deepEqual(
      offsets,
      Array.from({ length: total }, (_, i) => i),
      'in order, none lost, none twice',
    );
  } finally {
    release();
    await runner.stop();
  }
});
