import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EnrichedEvent } from '../../../src/core/types.js';
import { batch, event, reader, startSink, CUR_MINUTE, redisTestFile } from './redis-fixtures.js';

/**
 * The Redis sink's quality and identity rules against the real Redis: events flagged
 * implausible_duration kept out of the aggregates, and ids reused by new events after a sequence
 * reset. Each test uses its own key prefix under the file's isolated REDIS_KEY_PREFIX; the clock
 * is pinned to the middle of the current minute.
 */

const { env, admin, prefix } = redisTestFile();

/** An event with duration_ms 2147483647, flagged as the processor flags it. */
function implausible(id: number, content: string, ts: number): EnrichedEvent {
  const e = event({ id, content, user: `z${id}`, ts, eng: 2147483.647, pct: 1789569.7 });
  return { ...e, duration_ms: 2147483647, quality_flags: ['pct_above_100', 'implausible_duration'] };
}

describe('redis sink: quality and identity', () => {
  it('keeps events flagged implausible_duration out of top content and the stats', async () => {
    const p = prefix();
    const sink = await startSink(env().config, p);
    try {
      await sink.write(
        batch([
          event({ id: 1, content: 'A', user: 'u1', ts: CUR_MINUTE + 1_000, eng: 30, pct: 25 }),
          event({ id: 2, content: 'A', user: 'u2', ts: CUR_MINUTE + 2_000, eng: 10, pct: 10 }),
          event({ id: 3, content: 'B', user: 'u1', ts: CUR_MINUTE + 3_000, eng: 20, pct: 50 }),
        ]),
      );
      const r = reader(admin(), p);
      const look = async () => ({
        byEngagement: await r.topContent({ limit: 10 }),
        byEvents: await r.topContent({ limit: 10, by: 'events' }),
        a: await r.contentStats('A'),
        b: await r.contentStats('B'),
        z: await r.contentStats('Z'),
        window: await r.windowCount(),
      });
      const before = await look();
      assert.deepEqual(
        before.byEngagement.map((t) => t.content_id),
        ['A', 'B'],
      );
      await sink.write(batch([implausible(4, 'Z', CUR_MINUTE + 4_000), implausible(5, 'B', CUR_MINUTE + 5_000)], 3));
      assert.deepEqual(await look(), before, 'nothing moved');
      assert.equal(before.z, null);
      assert.deepEqual(await sink.storedOffsets('enriched', [0]), new Map([[0, '5']]), 'the offset advanced past them');
    } finally {
      await sink.close();
    }
  });

  it('applies a new event that reuses an id in the same minute; the same event re-sent is a duplicate', async () => {
    const p = prefix();
    const sink = await startSink(env().config, p);
    try {
      const old = event({ id: 1, content: 'A', user: 'u1', ts: CUR_MINUTE + 1_000, eng: 5 });
      await sink.write(batch([old]));
      // After TRUNCATE … RESTART IDENTITY: id 1 again, a new event 9 s later; and the old one re-sent
      // through the topic by a backfill (new offsets, the same event).
      const reused = event({ id: 1, content: 'A', user: 'u2', ts: CUR_MINUTE + 10_000, eng: 7 });
      await sink.write(batch([reused, { ...old, origin: 'backfill' }], 1));
      const stats = await reader(admin(), p).contentStats('A');
      assert.equal(stats?.events, 2);
      assert.equal(stats?.total_engagement_seconds, 12);
    } finally {
      await sink.close();
    }
  });
});
