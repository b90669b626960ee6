import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { registry } from '../../../src/core/metrics.js';
import { minuteOf, minuteExpireAt } from '../../../src/sinks/redis/keys.js';
import { DEFAULT_MARGIN_SECONDS } from '../../../src/sinks/redis/options.js';
import { MIN, NOW, TOPIC, batch, event, reader, startSink, CUR_MINUTE, redisTestFile } from './redis-fixtures.js';

/**
 * The Redis sink's aggregates against the real Redis: a hand-computed batch, the event-time
 * window (old events excluded, late ones counted, buckets expiring), a batch of very many
 * (minute, content) groups, and what check() refuses. Each test uses its own key prefix under the
 * file's isolated REDIS_KEY_PREFIX; the clock is pinned to the middle of the current minute.
 */

const { env, admin, prefix } = redisTestFile();

async function tooOldCount(): Promise<number> {
  const m = await registry.getSingleMetric('engage_sink_redis_events_total')?.get();
  return m?.values.find((v) => v.labels.result === 'too_old')?.value ?? 0;
}

describe('redis sink aggregates', () => {
  it('computes the window aggregates of a known batch', async () => {
    const p = prefix();
    const sink = await startSink(env().config, p);
    try {
      const prev = CUR_MINUTE - MIN;
      await sink.write(
        batch([
          event({ id: 1, content: 'A', user: 'u1', type: 'play', ts: prev + 10_000, eng: 10.5, pct: 25 }),
          event({ id: 2, content: 'A', user: 'u2', type: 'pause', ts: prev + 20_000, eng: 4, pct: 10 }),
          event({ id: 3, content: 'A', user: 'u1', type: 'finish', ts: CUR_MINUTE + 1_000, eng: 30, pct: 75 }),
          event({ id: 4, content: 'A', user: 'u3', type: 'click', ts: CUR_MINUTE + 2_000, eng: null, pct: null }),
          event({ id: 5, content: 'B', user: 'u1', type: 'play', ts: CUR_MINUTE + 3_000, eng: 2, pct: 50 }),
          event({ id: 6, content: 'B', user: null, type: 'play', ts: CUR_MINUTE + 4_000, eng: 1.25, pct: 12.5 }),
          event({ id: 7, content: 'A', user: 'u2', type: 'play', ts: CUR_MINUTE + 5_000, eng: 5, pct: 12.5 }),
          event({ id: 8, content: 'C', user: 'u4', type: 'click', ts: CUR_MINUTE + 6_000, eng: 0, pct: 0 }),
          event({ id: 9, content: 'C', user: 'u5', type: 'click', ts: CUR_MINUTE + 7_000, eng: 0, pct: 0 }),
          event({ id: 10, content: 'C', user: 'u5', type: 'click', ts: CUR_MINUTE + 8_000, eng: 0, pct: 0 }),
        ]),
      );
      const client = admin();
      const r = reader(client, p);
      assert.deepEqual(await r.topContent({ limit: 10 }), [
        {
          rank: 1,
          content_id: 'A',
          slug: 'slug-A',
          title: 'Title A',
          content_type: 'video',
          engagement_seconds: 49.5,
          events: 5,
        },
        {
          rank: 2,
          content_id: 'B',
          slug: 'slug-B',
          title: 'Title B',
          content_type: 'video',
          engagement_seconds: 3.25,
          events: 2,
        },
        {
          rank: 3,
          content_id: 'C',
          slug: 'slug-C',
          title: 'Title C',
          content_type: 'video',
          engagement_seconds: 0,
          events: 3,
        },
      ]);
      assert.deepEqual(
        (await r.topContent({ limit: 2, by: 'events' })).map((e) => [e.content_id, e.events]),
        [
          ['A', 5],
          ['C', 3],
        ],
      );
      assert.deepEqual(await r.contentStats('A'), {
        content_id: 'A',
        window_minutes: 10,
        slug: 'slug-A',
        title: 'Title A',
        content_type: 'video',
        events: 5,
        plays: 2,
        pauses: 1,
        finishes: 1,
        clicks: 1,
        unique_users: 3,
        total_engagement_seconds: 49.5,
        avg_engagement_seconds: 12.375,
        avg_engagement_pct: 30.625,
        completion_rate: 0.5,
        last_event_ts: new Date(CUR_MINUTE + 5_000).toISOString(),
      });
      const b = await r.contentStats('B');
      assert.equal(b?.unique_users, 1, 'a null user is not a user');
      assert.equal(b?.avg_engagement_seconds, 1.625);
      assert.equal(b?.avg_engagement_pct, 31.25);
      assert.equal(b?.completion_rate, 0);
      const a1 = await r.contentStats('A', 1);
      assert.deepEqual(
        [a1?.events, a1?.plays, a1?.pauses, a1?.total_engagement_seconds, a1?.unique_users],
        [3, 1, 0, 35, 3],
      );
      assert.equal(await r.windowCount(), 10);
      assert.equal(await r.windowCount(1), 8);
      assert.deepEqual(
        (await r.recentEvents('A', 3)).map((e) => e.event_id),
        ['7', '4', '3'],
      );
      assert.deepEqual(await sink.storedOffsets(TOPIC, [0, 1]), new Map([[0, '10']]));
    } finally {
      await sink.close();
    }
  });

  it('keeps a sliding window by event time: old events excluded, late ones inside the window counted, buckets expire', async () => {
    const p = prefix();
    const sink = await startSink(env().config, p);
    try {
      const before = await tooOldCount();
      await sink.write(
        batch([
          event({ id: 1, content: 'A', ts: CUR_MINUTE + 1_000 }),
          event({ id: 2, content: 'A', ts: CUR_MINUTE - 10 * MIN + 59_000 }), // minute c-10: just outside a 10-minute window
          event({ id: 3, content: 'A', ts: CUR_MINUTE - 9 * MIN }), // late but in the oldest minute of the window
          event({ id: 4, content: 'A', ts: CUR_MINUTE - 60 * MIN }),
        ]),
      );
      assert.equal((await tooOldCount()) - before, 2);
      const r = reader(admin(), p);
      assert.equal(await r.windowCount(), 2);
      assert.equal((await r.contentStats('A'))?.events, 2);
      // One minute later the oldest bucket has left the window; ten minutes later all of them.
      assert.equal(await reader(admin(), p, 10, () => NOW + MIN).windowCount(), 1);
      assert.equal(await reader(admin(), p, 10, () => NOW + 10 * MIN).windowCount(), 0);
      assert.deepEqual(await reader(admin(), p, 10, () => NOW + 10 * MIN).topContent({ limit: 5 }), []);
      // Every bucket key carries its expiry: end of minute m + window + 1, plus the margin.
      const m = minuteOf(CUR_MINUTE - 9 * MIN);
      const expected = minuteExpireAt(m, 10, DEFAULT_MARGIN_SECONDS) * 1000;
      for (const suffix of ['eng', 'cnt', 'n', 'ids', 's', 'u:A']) {
        assert.equal(await admin().pExpireTime(`${p}rs:m:${m}:${suffix}`), expected, suffix);
      }
      assert.ok(
        (await admin().pExpireTime(`${p}rs:recent:A`)) >=
          minuteExpireAt(minuteOf(CUR_MINUTE), 10, DEFAULT_MARGIN_SECONDS) * 1000,
      );
      assert.equal(
        await admin().exists(`${p}rs:m:${minuteOf(CUR_MINUTE - 10 * MIN)}:n`),
        0,
        'nothing written for a minute outside the window',
      );
    } finally {
      await sink.close();
    }
  });

  it('writes a batch of many (minute, content) groups: hundreds of thousands of script arguments', async () => {
    const p = prefix();
    const sink = await startSink(env().config, p);
    try {
      const events = Array.from({ length: 8000 }, (_, i) =>
        event({ id: 9000 + i, content: `G${i}`, user: `u${i}`, ts: CUR_MINUTE - (i % 10) * MIN + (i % 50) * 100 }),
      );
      await sink.write(batch(events, 0));
      assert.equal(await reader(admin(), p).windowCount(), 8000);
      assert.equal((await reader(admin(), p).contentStats('G7999'))?.events, 1);
    } finally {
      await sink.close();
    }
  });

  it('rejects records it cannot aggregate through check()', async () => {
    const sink = await startSink(env().config, prefix());
    try {
      const good = batch([event({ id: 1, content: 'A', ts: CUR_MINUTE })]).records[0]!;
      assert.equal(sink.check(good), null);
      for (const bad of [
        { event_type: 'skip' },
        { event_ts: 'yesterday' },
        { content_id: '' },
        { engagement_seconds: -1 },
        { engagement_pct: Number.NaN },
      ]) {
        const err = sink.check({ ...good, event: { ...good.event, ...bad } as typeof good.event });
        assert.equal(err?.code, 'INVALID_VALUE', JSON.stringify(bad));
      }
    } finally {
      await sink.close();
    }
  });
});
