import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PipelineError } from '../../../src/core/errors.js';
import {
  MIN,
  NOW,
  TOPIC,
  batch,
  event,
  reader,
  snapshot,
  startSink,
  wipe,
  CUR_MINUTE,
  redisTestFile,
} from './redis-fixtures.js';

/**
 * Redis losing the sink's data. FLUSHALL would hit every developer sharing the stack, so the wipe
 * is simulated by deleting this test's own keys (SCAN <prefix>* + DEL): to the sink that is exactly
 * what FLUSHALL or a restart without persistence looks like (its state hash and buckets are gone).
 */

const { env, admin, prefix } = redisTestFile();

const events = Array.from({ length: 20 }, (_, i) =>
  event({
    id: 900 + i,
    content: `C${i % 4}`,
    user: `u${i % 7}`,
    type: i % 3 === 0 ? 'finish' : 'play',
    ts: CUR_MINUTE - (i % 5) * MIN + i * 500,
    eng: i,
    pct: i * 2,
  }),
);

async function rejectsLost(p: Promise<unknown>): Promise<void> {
  await assert.rejects(
    p,
    (err: unknown) => err instanceof PipelineError && err.code === 'SINK_STATE_LOST' && !err.retriable,
  );
}

describe('redis sink state loss', () => {
  it('notices a wipe, reports no offsets and a start at now - window, and rebuilds without double counting', async () => {
    const p = prefix();
    const sink = await startSink(env().config, p);
    try {
      await sink.write(batch(events.slice(0, 10), 0));
      await sink.write(batch(events.slice(10, 15), 10));
      const isState = (k: string) => k.endsWith('rs:state');
      const beforeWipe = await snapshot(admin(), p, isState);
      assert.ok((await wipe(admin(), p)) > 0);

      await rejectsLost(sink.write(batch(events.slice(15), 15)));
      assert.deepEqual(await snapshot(admin(), p), {}, 'a rejected write changes nothing');
      await rejectsLost(sink.write(batch(events.slice(15), 15)));

      assert.deepEqual(await sink.storedOffsets(TOPIC, [0, 1, 2]), new Map());
      assert.deepEqual(sink.startPosition(), { timestampMs: NOW - 11 * MIN });
      // The runtime re-reads the window from Kafka: the same records again, in other batch cuts,
      // with a duplicate thrown in.
      await sink.write(batch(events.slice(0, 7), 0));
      await sink.write(batch([...events.slice(7, 15), events[2]!], 7));
      assert.deepEqual(
        await snapshot(admin(), p, isState),
        beforeWipe,
        'rebuilt state equals the state before the wipe',
      );
      await sink.write(batch(events.slice(15), 16));
      assert.equal(await reader(admin(), p).windowCount(), 20);
      assert.deepEqual(await sink.storedOffsets(TOPIC, [0]), new Map([[0, '21']]));
    } finally {
      await sink.close();
    }
  });

  it('notices a wipe on a partition it never wrote (epoch) and a restore of an older snapshot (offset rolled back)', async () => {
    const p = prefix();
    const a = await startSink(env().config, p);
    const b = await startSink(env().config, p);
    try {
      await a.write(batch(events.slice(0, 5), 0, 0));
      assert.deepEqual(
        await b.storedOffsets(TOPIC, [1]),
        new Map(),
        'b learns the epoch, partition 1 has no offset yet',
      );
      await wipe(admin(), p);
      await a.storedOffsets(TOPIC, [0]); // a restarts its partition after the wipe: state recreated by its next write
      await a.write(batch(events.slice(0, 5), 0, 0));
      await rejectsLost(b.write(batch(events.slice(5, 10), 0, 1)));
      assert.deepEqual(await b.storedOffsets(TOPIC, [1]), new Map());
      await b.write(batch(events.slice(5, 10), 0, 1));
      assert.equal(await reader(admin(), p).windowCount(), 10);

      // An older snapshot restored (e.g. RDB from before the last writes): partition 0's offset is lower.
      await admin().hSet(`${p}rs:state`, `o:${TOPIC}:0`, '2');
      await rejectsLost(a.write(batch(events.slice(10, 12), 5, 0)));
      assert.deepEqual(await a.storedOffsets(TOPIC, [0]), new Map([[0, '2']]));
      await a.write(batch(events.slice(2, 5), 2, 0)); // the runtime re-seeks to 2: already counted, deduped
      await a.write(batch(events.slice(10, 12), 5, 0));
      assert.equal(await reader(admin(), p).windowCount(), 12);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('starts from no offsets on a fresh or wiped Redis after a restart', async () => {
    const p = prefix();
    const sink = await startSink(env().config, p);
    try {
      assert.deepEqual(await sink.storedOffsets(TOPIC, [0, 1, 2]), new Map());
      assert.deepEqual(sink.startPosition(), { timestampMs: NOW - 11 * MIN });
      await sink.write(batch([], 0, 1)); // an empty batch still stores its offset (and creates the state)
      assert.deepEqual(await sink.storedOffsets(TOPIC, [1]), new Map([[1, '0']]));
      const epoch = await admin().hGet(`${p}rs:state`, 'epoch');
      assert.match(epoch ?? '', /^[0-9a-f-]{36}$/);
    } finally {
      await sink.close();
    }
  });
});
