import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { registry } from '../../src/core/metrics.js';
import type { EnrichedEvent } from '../../src/core/types.js';
import { sinkGroupId } from '../../src/runtime/sink-runner-options.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import { createTestEnv, ownTopics, type TestEnv } from '../helpers/env.js';
import { createMemoryStore, memoryCount, memorySinkFactory, wipeStore } from '../helpers/memory-sink.js';
import {
  committedOffsets,
  enrichedEvent,
  eventMessages,
  highWatermarks,
  produce,
  readDlq,
  waitCaughtUp,
  type RawMessage,
} from '../helpers/sink-harness.js';
import { waitFor } from '../helpers/wait.js';

/** The sink runner's failure paths on the real stack: retries, DLQ, state loss. */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'test-sink-runner');
const FAST_RETRY = { attempts: 3, baseMs: 10, maxMs: 50, jitter: 'none' as const };
let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env.cleanup();
});

/** A test's own topics (ownTopics): tests of this file never see each other's records. */
const configFor = (name: string) => ownTopics(env, name);

test('a retriable write failure is retried, then succeeds: nothing goes to the DLQ', { timeout: 60000 }, async () => {
  const config = configFor('retry');
  const store = createMemoryStore();
  let failures = 2;
  const factory = memorySinkFactory({
    name: 'mem-retry',
    variant: 'offsets',
    store,
    batching: { maxRecords: 100, maxWaitMs: 50 },
    beforeWrite: async () => {
      if (failures-- > 0) throw new PipelineError('SINK_WRITE_FAILED', 'transient', { retriable: true });
    },
  });
  const runner = await startSinkRunner(config, factory, log, { retry: FAST_RETRY });
  try {
    await produce(
      config,
      config.KAFKA_TOPIC_ENRICHED,
      eventMessages(
        Array.from({ length: 5 }, () => enrichedEvent()),
        0,
      ),
    );
    await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
    assert.equal(memoryCount(store, 'offsets'), 5);
    assert.deepEqual(
      store.calls.map((c) => c.failed),
      [true, true, false],
      'two failed attempts, then one success',
    );
    assert.equal(runner.snapshot().dlq, 0);
    assert.ok(runner.snapshot().errors >= 2);
  } finally {
    await runner.stop();
  }
  assert.equal((await highWatermarks(config, config.KAFKA_TOPIC_DLQ)).get(0), '0', 'the DLQ is empty');
  assert.equal(
    (await committedOffsets(config, sinkGroupId(config, 'mem-retry'), config.KAFKA_TOPIC_ENRICHED)).get(0),
    '5',
  );
});

test(
  "an outage longer than the retry policy's attempts is waited out: nothing goes to the DLQ",
  { timeout: 60000 },
  async () => {
    const config = configFor('outage');
    const store = createMemoryStore();
    let down = true;
    const factory = memorySinkFactory({
      name: 'mem-outage',
      variant: 'offsets',
      store,
      batching: { maxRecords: 100, maxWaitMs: 50 },
      beforeWrite: async (batch) => {
        if (down && batch.records.length > 0) throw new PipelineError('SINK_WRITE_FAILED', 'down', { retriable: true });
      },
    });
    const runner = await startSinkRunner(config, factory, log, { retry: FAST_RETRY });
    const events = Array.from({ length: 4 }, () => enrichedEvent());
    try {
      await produce(config, config.KAFKA_TOPIC_ENRICHED, eventMessages(events, 0));
      const failed = () => store.calls.filter((c) => c.failed).length;
      await waitFor(
        `more failed writes than the policy's ${FAST_RETRY.attempts} attempts`,
        () => failed() >= 3 * FAST_RETRY.attempts,
        { timeoutMs: 30000, describe: () => store.calls },
      );
      assert.equal(runner.snapshot().dlq, 0, 'nothing parked while the system is down');
      assert.ok(runner.status().waiting_since, 'the runner says it waits for its system');
      down = false;
      await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
      assert.equal(runner.status().waiting_since, null, 'no longer waiting once a write went through');
    } finally {
      await runner.stop();
    }
    assert.equal(memoryCount(store, 'offsets'), 4, 'every record written once the system is back');
    assert.equal((await highWatermarks(config, config.KAFKA_TOPIC_DLQ)).get(0), '0', 'the DLQ is empty');
    assert.equal(
      (await committedOffsets(config, sinkGroupId(config, 'mem-outage'), config.KAFKA_TOPIC_ENRICHED)).get(0),
      '4',
    );
  },
);

test(
  'a batch refused as a whole is split until the culprit is found: only it goes to the DLQ',
  { timeout: 60000 },
  async () => {
    const config = configFor('reject');
    const store = createMemoryStore();
    const events = Array.from({ length: 8 }, () => enrichedEvent());
    const culprit = events[5]?.event_id;
    const factory = memorySinkFactory({
      name: 'mem-reject',
      variant: 'offsets',
      store,
      batching: { maxRecords: 100, maxWaitMs: 200 },
      beforeWrite: async (batch) => {
        if (batch.records.some((r) => r.event.event_id === culprit))
          throw new PipelineError('SINK_REJECTED', 'the store refuses this batch');
      },
    });
    const runner = await startSinkRunner(config, factory, log, { retry: FAST_RETRY });
    try {
      await produce(config, config.KAFKA_TOPIC_ENRICHED, eventMessages(events, 1));
      await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
    } finally {
      await runner.stop();
    }
    const dlq = await readDlq(config);
    assert.deepEqual(
      dlq.map((e) => [e.code, e.attempts, e.partition, e.offset]),
      [['SINK_REJECTED', 1, 1, '5']],
    );
    assert.equal(memoryCount(store, 'offsets'), 7, 'the other seven are stored');
    assert.equal(
      store.offsets.get(`${config.KAFKA_TOPIC_ENRICHED}:1`),
      '8',
      'the stored offset passed the parked record',
    );
    const failedSizes = store.calls.filter((c) => c.failed).map((c) => c.records);
    assert.ok(
      failedSizes.includes(1) && failedSizes.length <= 4,
      `split down to the one record in log2(8) + 1 refusals (${failedSizes.join(', ')})`,
    );
    assert.equal(
      (await committedOffsets(config, sinkGroupId(config, 'mem-reject'), config.KAFKA_TOPIC_ENRICHED)).get(1),
      '8',
    );
  },
);

test(
  'DLQ entries are confirmed before the batch is written and before the offset is committed',
  { timeout: 60000 },
  async () => {
    const config = configFor('order');
    const store = createMemoryStore();
    const bad = new Set<number>();
    const messages: RawMessage[] = [];
    for (let i = 0; i < 12; i++) {
      if (i === 3) {
        messages.push({ key: 'k', value: Buffer.from([0xff, 0x00, 0x7b]), partition: 0 });
        bad.add(i);
      } else if (i === 8) {
        messages.push(eventMessages([enrichedEvent({ content_id: 'poison' })], 0)[0]!);
        bad.add(i);
      } else {
        messages.push(eventMessages([enrichedEvent()], 0)[0]!);
      }
    }
    const groupId = sinkGroupId(config, 'mem-order');
    const observations: Array<{ nextOffset: number; dlqHigh: number; committed: number; expectedDlq: number }> = [];
    const factory = memorySinkFactory({
      name: 'mem-order',
      variant: 'offsets',
      store,
      batching: { maxRecords: 4, maxWaitMs: 50 },
      rejects: (e: EnrichedEvent) =>
        e.content_id === 'poison' ? new PipelineError('INVALID_VALUE', 'poison record') : null,
      beforeWrite: async (batch) => {
        const dlqHigh = Number((await highWatermarks(config, config.KAFKA_TOPIC_DLQ)).get(0) ?? '0');
        const committed = Number((await committedOffsets(config, groupId, config.KAFKA_TOPIC_ENRICHED)).get(0) ?? '0');
        const nextOffset = Number(batch.nextOffset);
        observations.push({
          nextOffset,
          dlqHigh,
          committed,
          expectedDlq: [...bad].filter((o) => o < nextOffset).length,
        });
      },
    });
    const runner = await startSinkRunner(config, factory, log, { retry: FAST_RETRY });
    try {
      await produce(config, config.KAFKA_TOPIC_ENRICHED, messages);
      await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
    } finally {
      await runner.stop();
    }
    assert.ok(
      observations.some((o) => o.expectedDlq > 0),
      'some write followed a DLQ write',
    );
    for (const o of observations) {
      assert.ok(
        o.dlqHigh >= o.expectedDlq,
        `at the write ending at ${o.nextOffset}, the DLQ held ${o.dlqHigh} of ${o.expectedDlq} entries`,
      );
      assert.ok(
        o.committed < o.nextOffset,
        `the offset ${o.nextOffset} was not committed before its batch was written`,
      );
    }
    assert.equal(memoryCount(store, 'offsets'), 10, 'the rest flowed');
    const dlq = await readDlq(config);
    assert.deepEqual(dlq.map((e) => [e.offset, e.code]).sort(), [
      ['3', 'DECODE_FAILED'],
      ['8', 'INVALID_VALUE'],
    ]);
    assert.equal(
      Buffer.from(dlq.find((e) => e.offset === '3')?.value_base64 ?? '', 'base64').toString('hex'),
      'ff007b',
      'original bytes kept',
    );
    assert.equal((await committedOffsets(config, groupId, config.KAFKA_TOPIC_ENRICHED)).get(0), '12');
  },
);

/** Observations of a sink's end-to-end freshness histogram in this process. */
async function freshnessCount(sink: string): Promise<number | undefined> {
  const metric = await registry.getSingleMetric('engage_sink_freshness_seconds')?.get();
  return metric?.values.find(
    (v) =>
      (v as { metricName?: string }).metricName === 'engage_sink_freshness_seconds_count' && v.labels.sink === sink,
  )?.value;
}

test(
  'SINK_STATE_LOST: the runner re-positions from the sink and it rebuilds without double counting',
  { timeout: 60000 },
  async () => {
    const config = configFor('lost');
    const store = createMemoryStore();
    const factory = memorySinkFactory({
      name: 'mem-lost',
      variant: 'offsets',
      store,
      batching: { maxRecords: 50, maxWaitMs: 50 },
    });
    const runner = await startSinkRunner(config, factory, log, { retry: FAST_RETRY });
    try {
      await produce(
        config,
        config.KAFKA_TOPIC_ENRICHED,
        eventMessages(Array.from({ length: 30 }, () => enrichedEvent())),
      );
      await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
      assert.equal(memoryCount(store, 'offsets'), 30);
      wipeStore(store);
      await produce(
        config,
        config.KAFKA_TOPIC_ENRICHED,
        eventMessages(Array.from({ length: 9 }, () => enrichedEvent())),
      );
      await waitFor('the store is rebuilt', () => memoryCount(store, 'offsets') === 39, {
        timeoutMs: 30000,
        describe: () => runner.snapshot(),
      });
      await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
      assert.equal(runner.snapshot().stateLost, 1);
      // Freshness counts each record once: the 30 re-read by the rebuild are written again, not observed again.
      assert.equal(await freshnessCount('mem-lost'), 39, 'freshness observations');
    } finally {
      await runner.stop();
    }
    assert.equal(memoryCount(store, 'offsets'), 39, 'everything once, nothing twice');
    const keys = new Set(store.appended.map((r) => `${r.partition}:${r.offset}`));
    assert.equal(keys.size, 39);
    assert.equal((await highWatermarks(config, config.KAFKA_TOPIC_DLQ)).get(0), '0', 'state loss parks nothing');
  },
);

test(
  'a stop while the destination is down ends after the drain grace: the batch is abandoned, not parked or committed',
  { timeout: 90000 },
  async () => {
    const config = configFor('down-at-stop');
    const store = createMemoryStore();
    let calls = 0;
    const factory = memorySinkFactory({
      name: 'mem-down',
      variant: 'idempotent',
      store,
      batching: { maxRecords: 100, maxWaitMs: 50 },
      beforeWrite: async (batch) => {
        if (batch.records.length === 0) return;
        calls++;
        // An open circuit: refusals that spend no attempt, so only the stop can end the retrying.
        throw new PipelineError('CIRCUIT_OPEN', 'down', {
          retriable: true,
          consumesAttempt: false,
          details: { retryAfterMs: 200 },
        });
      },
    });
    const runner = await startSinkRunner(config, factory, log, { retry: FAST_RETRY });
    await produce(
      config,
      config.KAFKA_TOPIC_ENRICHED,
      eventMessages(
        Array.from({ length: 3 }, () => enrichedEvent()),
        0,
      ),
    );
    await waitFor('the write to be refused a few times', () => calls >= 5, 30000);
    await runner.stop();
    assert.ok(
      calls > FAST_RETRY.attempts,
      `refusals did not spend the ${FAST_RETRY.attempts} attempts (${calls} calls)`,
    );
    assert.equal(memoryCount(store, 'idempotent'), 0);
    assert.equal(runner.snapshot().dlq, 0, 'nothing parked');
    assert.equal((await highWatermarks(config, config.KAFKA_TOPIC_DLQ)).get(0), '0', 'the DLQ is empty');
    const committed = (
      await committedOffsets(config, sinkGroupId(config, 'mem-down'), config.KAFKA_TOPIC_ENRICHED)
    ).get(0);
    assert.ok(
      committed === undefined || committed === '-1' || committed === '0',
      `nothing committed (got ${committed})`,
    );
  },
);
