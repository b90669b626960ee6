import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PipelineError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import type { DlqEntry, EnrichedEvent } from '../../src/core/types.js';
import { listDlq } from '../../src/dlq/list.js';
import { readTopicRange } from '../../src/dlq/read.js';
import { formatReplayResult, replayDlq, replayGroupId } from '../../src/dlq/replay.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import { startProcessor } from '../../src/processor/processor.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import { createTestEnv, ownTopics, type TestEnv } from '../helpers/env.js';
import { createMemoryStore, memoryCount, memorySinkFactory, type MemoryVariant } from '../helpers/memory-sink.js';
import { deleteGroup, enrichedEvent, eventMessages, produce, readDlq, waitCaughtUp } from '../helpers/sink-harness.js';
import { waitFor } from '../helpers/wait.js';

/** `engage dlq list | replay` on the real stack, with the in-memory sink standing in for a real one. */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'test-dlq');
let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env.cleanup();
});

/** A test's own topics (ownTopics): tests of this file never see each other's records. */
const configFor = (name: string) => ownTopics(env, name);

function foreignEntry(stage: string, topic: string, value: string): DlqEntry {
  return {
    reason: 'bad',
    code: 'INVALID_VALUE',
    stage,
    topic,
    partition: 0,
    offset: '0',
    key: 'k1',
    value_base64: Buffer.from(value).toString('base64'),
    failed_at: new Date().toISOString(),
    attempts: 1,
  };
}

/** Parks `events` in the DLQ as sink:<name> (the sink refuses every write), plus other stages' entries. */
async function parkEvents(config: ReturnType<typeof configFor>, name: string, events: EnrichedEvent[]): Promise<void> {
  const factory = memorySinkFactory({
    name,
    variant: 'idempotent',
    store: createMemoryStore(),
    batching: { maxRecords: 100, maxWaitMs: 50 },
    beforeWrite: async (b) => {
      if (b.records.length > 0) throw new PipelineError('HTTP_REJECTED', 'the system refused the batch');
    },
  });
  const runner = await startSinkRunner(config, factory, log);
  try {
    await produce(config, config.KAFKA_TOPIC_ENRICHED, eventMessages(events, 0));
    await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
  } finally {
    await runner.stop();
  }
  await produce(config, config.KAFKA_TOPIC_DLQ, [
    { key: null, value: JSON.stringify(foreignEntry('processor', config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, '{"op":"c"}')) },
    { key: null, value: JSON.stringify(foreignEntry('sink:other', config.KAFKA_TOPIC_ENRICHED, '{}')) },
  ]);
}

for (const variant of ['idempotent', 'offsets'] as MemoryVariant[]) {
  test(
    `list, dry run, replay into a fixed sink (${variant}); a record failing again is parked again; replays repeat nothing`,
    { timeout: 90000 },
    async () => {
      const config = configFor(`replay-${variant}`);
      const name = `mem-${variant}`;
      const stage = `sink:${name}`;
      const events = Array.from({ length: 6 }, (_, i) => enrichedEvent(i === 2 ? { device: 'still-bad' } : {}));
      await parkEvents(config, name, events);

      const listing = await listDlq(config, { stage, limit: 4 });
      assert.equal(listing.total, 8);
      assert.equal(listing.matched, 6);
      assert.deepEqual(listing.byStage, { [stage]: 6, processor: 1, 'sink:other': 1 });
      assert.deepEqual(listing.byCode, { HTTP_REJECTED: 6 });
      assert.deepEqual(
        listing.entries.map((e) => e.entry.offset),
        ['2', '3', '4', '5'],
        'the newest 4',
      );
      assert.deepEqual(
        listing.entries.map((e) => e.replay),
        ['to replay', 'to replay', 'to replay', 'to replay'],
      );
      assert.deepEqual(listing.toReplayByStage, { [stage]: 6, processor: 1, 'sink:other': 1 });

      const store = createMemoryStore();
      const fixed = memorySinkFactory({
        name,
        variant,
        store,
        rejects: (e) => (e.device === 'still-bad' ? new PipelineError('INVALID_VALUE', 'still bad') : null),
      });
      const dry = await replayDlq(config, log, { stage, dryRun: true, factory: fixed });
      assert.deepEqual([dry.pending, dry.replayed, dry.scanned], [6, 0, 8]);
      assert.equal(memoryCount(store, variant), 0, 'a dry run writes nothing');

      const first = await replayDlq(config, log, { stage, factory: fixed });
      assert.deepEqual([first.pending, first.replayed, first.failedAgain], [6, 5, 1]);
      assert.deepEqual(
        new Set(variant === 'idempotent' ? store.byId.keys() : store.appended.map((r) => r.event.event_id)),
        new Set(events.filter((_, i) => i !== 2).map((e) => e.event_id)),
      );
      const parkedAgain = (await readDlq(config)).filter((e) => e.stage === stage && e.attempts === 2);
      assert.equal(parkedAgain.length, 1);
      assert.deepEqual(
        [parkedAgain[0]?.code, parkedAgain[0]?.topic, parkedAgain[0]?.offset],
        ['INVALID_VALUE', config.KAFKA_TOPIC_ENRICHED, '2'],
        'parked again at its original position',
      );
      const after = await listDlq(config, { stage, limit: 10 });
      assert.deepEqual(
        after.toReplayByStage,
        { [stage]: 1, processor: 1, 'sink:other': 1 },
        'only the re-parked entry is left to replay; other stages untouched',
      );
      assert.deepEqual(
        after.entries.map((e) => [e.entry.offset, e.entry.attempts, e.replay]),
        [...['0', '1', '2', '3', '4', '5'].map((o) => [o, 1, 'replayed']), ['2', 2, 'to replay']],
      );

      const second = await replayDlq(config, log, { stage, factory: fixed });
      assert.deepEqual(
        [second.pending, second.replayed, second.failedAgain],
        [1, 0, 1],
        'progress is kept: only the re-parked entry is left',
      );
      assert.equal(memoryCount(store, variant), 5);

      // Progress lost (the replay group deleted): the sink's stored offsets or its dedupe absorb it.
      await deleteGroup(config, replayGroupId(config, stage));
      await replayDlq(config, log, { stage, factory: fixed });
      assert.equal(memoryCount(store, variant), 5, 'a repeated replay counts nothing twice');
    },
  );
}

test(
  'processor entries go back to their source topic, exactly once; the processor judges them later and parks a reject as a new entry',
  { timeout: 60000 },
  async () => {
    const config = configFor('replay-processor');
    await ensureTopics(config);
    const originals = ['{"op":"c","n":1}', '{"op":"c","n":2}', 'not even json'];
    await produce(config, config.KAFKA_TOPIC_DLQ, [
      ...originals.map((v, i) => ({
        key: null,
        value: JSON.stringify({
          ...foreignEntry('processor', config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, v),
          key: `key-${i}`,
          attempts: 2,
        }),
      })),
      { key: null, value: JSON.stringify(foreignEntry('sink:redis', config.KAFKA_TOPIC_ENRICHED, '{}')) },
    ]);
    const first = await replayDlq(config, log, { stage: 'processor' });
    assert.deepEqual(
      [first.pending, first.replayed, first.failedAgain],
      [3, 3, null],
      'what fails again is not known when the replay returns',
    );
    const summary = formatReplayResult(first);
    assert.match(summary, /re-sent 3 to their source topic for the processor to judge again/);
    assert.match(summary, /parked again as a new entry \(attempts \+ 1/);
    assert.doesNotMatch(summary, /failed again/);
    const again = await replayDlq(config, log, { stage: 'processor' });
    assert.deepEqual([again.pending, again.replayed], [0, 0]);
    const seen: Array<[string | null, string]> = [];
    await readTopicRange(config, config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, (m) =>
      seen.push([m.key?.toString() ?? null, m.value?.toString() ?? '']),
    );
    assert.deepEqual(
      seen.sort(),
      originals.map((v, i) => [`key-${i}`, v] as [string, string]).sort(),
      'each original once, with its key',
    );

    // What the summary promises: the processor, once it runs, rejects them again as new entries.
    const proc = await startProcessor(config, log);
    try {
      // Parked again with attempts + 1: the re-sent records carried their entries' 2.
      const reparked = async () => (await readDlq(config)).filter((e) => e.stage === 'processor' && e.attempts === 3);
      await waitFor(
        'the processor parks the re-sent records again',
        async () => (await reparked()).length === originals.length,
        30000,
      );
      const values = (await reparked()).map((e) => Buffer.from(e.value_base64 ?? '', 'base64').toString()).sort();
      assert.deepEqual(values, [...originals].sort());
    } finally {
      await proc.stop();
    }
    const listing = await listDlq(config, { stage: 'processor' });
    assert.equal(listing.toReplayByStage.processor, originals.length, 'the new entries are left to replay');
  },
);
