import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { registry } from '../../src/core/metrics.js';
import type { EnrichedEvent } from '../../src/core/types.js';
import { sinkGroupId } from '../../src/runtime/sink-runner-options.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import type { EncodedBatch, EncodedWriteResult, SinkFactory } from '../../src/core/sink-contract.js';
import { createTestEnv, ownTopics, type TestEnv } from '../helpers/env.js';
import { createMemoryStore, memoryCount, memorySink, type MemoryStore } from '../helpers/memory-sink.js';
import {
  committedOffsets,
  enrichedEvent,
  eventMessages,
  produce,
  readDlq,
  waitCaughtUp,
} from '../helpers/sink-harness.js';

/**
 * The runtime's fast way (src/runtime/encoded-delivery.ts) on the real stack: a sink with
 * `writeEncoded` gets batches undecoded; a batch it declines (`needs-check`) or fails goes the
 * checked way — decode, check, DLQ, `write` — so a value that is not an enriched event is parked
 * with DECODE_FAILED exactly as for any sink, and nothing is lost or written twice.
 */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'test-sink-runner-encoded');
let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env.cleanup();
});

interface FastCalls {
  encoded: number[];
  declined: number;
  failed: number;
}

/**
 * A memory sink (offsets variant) with a fast path that stores a batch only when every value is an
 * enriched event's JSON, declines it otherwise, and throws (not retriable) while `failFast` > 0.
 */
function fastFactory(
  name: string,
  store: MemoryStore,
  calls: FastCalls,
  failFast = 0,
  encodedMinRecords?: number,
): SinkFactory {
  return {
    name,
    batching: () => ({ maxRecords: 100, maxWaitMs: 50 }),
    create: () => {
      const sink = memorySink({ name, variant: 'offsets', store });
      const writeEncoded = async (batch: EncodedBatch): Promise<EncodedWriteResult> => {
        calls.encoded.push(batch.records.length);
        if (failFast-- > 0) {
          calls.failed++;
          throw new PipelineError('SINK_WRITE_FAILED', 'the fast path broke', { retriable: false });
        }
        const events: EnrichedEvent[] = [];
        for (const r of batch.records) {
          try {
            events.push(JSON.parse(r.value.toString('utf8')) as EnrichedEvent);
          } catch {
            calls.declined++;
            return { kind: 'needs-check' };
          }
        }
        const records = events.map((event, i) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: batch.records[i]?.offset ?? '',
          key: null,
          event,
        }));
        await sink.write({ topic: batch.topic, partition: batch.partition, records, nextOffset: batch.nextOffset });
        return { kind: 'written', sourceTsMs: events.map((e) => e.source_ts_ms) };
      };
      return Object.assign(sink, { writeEncoded, encodedMinRecords });
    },
  };
}

/** engage_sink_fast_path_batches_total of one sink, by outcome. */
async function fastPathCounts(sink: string): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('engage_sink_fast_path_batches_total')?.get();
  return Object.fromEntries(
    (metric?.values ?? []).filter((v) => v.labels.sink === sink).map((v) => [String(v.labels.outcome), v.value]),
  );
}

/** A test's own topics (ownTopics): tests of this file never see each other's records. */
const configFor = (name: string) => ownTopics(env, name);

test(
  'batches go the fast way; one it declines goes the checked way, which parks the undecodable value',
  { timeout: 60000 },
  async () => {
    const config = configFor('fast');
    const store = createMemoryStore();
    const calls: FastCalls = { encoded: [], declined: 0, failed: 0 };
    const runner = await startSinkRunner(config, fastFactory('mem-fast', store, calls), log);
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
      assert.equal(store.calls.length, calls.encoded.length, 'every write came from the fast path');
      assert.equal(calls.declined, 0);

      await produce(config, config.KAFKA_TOPIC_ENRICHED, [
        ...eventMessages([enrichedEvent(), enrichedEvent()], 0),
        { key: 'bad', value: Buffer.from('{"not json'), partition: 0 },
      ]);
      await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
      assert.equal(calls.declined, 1, 'the batch holding the bad value was declined');
      assert.equal(memoryCount(store, 'offsets'), 7, 'its good records were written the checked way');
      const dlq = await readDlq(config);
      assert.deepEqual(
        dlq.map((e) => [e.code, e.offset, Buffer.from(e.value_base64 ?? '', 'base64').toString()]),
        [['DECODE_FAILED', '7', '{"not json']],
      );
      const counts = await fastPathCounts('mem-fast');
      assert.equal(counts.declined, 1);
      assert.equal(counts.failed, 0);
      assert.equal(counts.written, calls.encoded.length - 1, 'every other offered batch was written that way');
    } finally {
      await runner.stop();
    }
    assert.equal(
      (await committedOffsets(config, sinkGroupId(config, 'mem-fast'), config.KAFKA_TOPIC_ENRICHED)).get(0),
      '8',
    );
  },
);

test(
  'a batch the fast path fails on is written the checked way: nothing lost, nothing parked',
  { timeout: 60000 },
  async () => {
    const config = configFor('fastfail');
    const store = createMemoryStore();
    const calls: FastCalls = { encoded: [], declined: 0, failed: 0 };
    const runner = await startSinkRunner(config, fastFactory('mem-fastfail', store, calls, 1), log);
    try {
      await produce(
        config,
        config.KAFKA_TOPIC_ENRICHED,
        eventMessages(
          Array.from({ length: 4 }, () => enrichedEvent()),
          0,
        ),
      );
      await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
      assert.equal(calls.failed, 1);
      assert.equal(memoryCount(store, 'offsets'), 4);
      assert.ok(runner.snapshot().errors >= 1, 'the failure is counted');
      assert.equal(runner.snapshot().dlq, 0);
      assert.equal((await fastPathCounts('mem-fastfail')).failed, 1);
    } finally {
      await runner.stop();
    }
    assert.equal(
      (await committedOffsets(config, sinkGroupId(config, 'mem-fastfail'), config.KAFKA_TOPIC_ENRICHED)).get(0),
      '4',
    );
  },
);

test("batches smaller than the sink's encodedMinRecords go the checked way directly", { timeout: 60000 }, async () => {
  const config = configFor('fastmin');
  const store = createMemoryStore();
  const calls: FastCalls = { encoded: [], declined: 0, failed: 0 };
  const runner = await startSinkRunner(config, fastFactory('mem-fastmin', store, calls, 0, 1000), log);
  try {
    await produce(
      config,
      config.KAFKA_TOPIC_ENRICHED,
      eventMessages(
        Array.from({ length: 6 }, () => enrichedEvent()),
        0,
      ),
    );
    await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
    assert.equal(memoryCount(store, 'offsets'), 6);
    assert.deepEqual(calls.encoded, [], 'never offered to the fast path');
    assert.deepEqual(await fastPathCounts('mem-fastmin'), { written: 0, declined: 0, failed: 0 });
  } finally {
    await runner.stop();
  }
});
