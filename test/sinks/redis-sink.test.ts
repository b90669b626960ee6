import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registry } from '../../src/core/metrics.js';
import type { EnrichedEvent } from '../../src/core/types.js';
import { MINUTE_MS, minuteOf, minuteExpireAt } from '../../src/sinks/redis/keys.js';
import type { RedisClient } from '../../src/sinks/redis/lua-script.js';
import { DEFAULT_MARGIN_SECONDS } from '../../src/sinks/redis/options.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { MIN, NOW, TOPIC, adminClient, batch, event, reader, snapshot, startSink, wipe } from './redis-fixtures.js';

/**
 * The Redis sink against the real Redis: aggregates of a hand-computed batch, the event-time
 * window, replays and backfill duplicates, events flagged implausible_duration kept out of the
 * aggregates, ids reused by new events after a sequence reset. Each test uses its own key prefix under the file's
 * isolated REDIS_KEY_PREFIX; the clock is pinned to the middle of the current minute.
 */

let env: TestEnv;
let admin: RedisClient;
let n = 0;
const prefix = () => `${env.config.REDIS_KEY_PREFIX}${++n}:`;
const cur = minuteOf(NOW) * MINUTE_MS;

before(async () => {
  env = await createTestEnv();
  admin = await adminClient(env.config);
});

after(async () => {
  await wipe(admin, env.config.REDIS_KEY_PREFIX);
  await admin.close();
  await env.cleanup();
});

async function tooOldCount(): Promise<number> {
  const m = await registry.getSingleMetric('engage_sink_redis_events_total')?.get();
  return m?.values.find((v) => v.labels.result === 'too_old')?.value ?? 0;
}

describe('redis sink aggregates', () => {
  it('computes the window aggregates of a known batch', async () => {
    const p = prefix();
    const sink = await startSink(env.config, p);
    try {
      const prev = cur - MIN;
      await sink.write(
        batch([
          event({ id: 1, content: 'A', user: 'u1', type: 'play', ts: prev + 10_000, eng: 10.5, pct: 25 }),
          event({ id: 2, content: 'A', user: 'u2', type: 'pause', ts: prev + 20_000, eng: 4, pct: 10 }),
          event({ id: 3, content: 'A', user: 'u1', type: 'finish', ts: cur + 1_000, eng: 30, pct: 75 }),
          event({ id: 4, content: 'A', user: 'u3', type: 'click', ts: cur + 2_000, eng: null, pct: null }),
          event({ id: 5, content: 'B', user: 'u1', type: 'play', ts: cur + 3_000, eng: 2, pct: 50 }),
          event({ id: 6, content: 'B', user: null, type: 'play', ts: cur + 4_000, eng: 1.25, pct: 12.5 }),
          event({ id: 7, content: 'A', user: 'u2', type: 'play', ts: cur + 5_000, eng: 5, pct: 12.5 }),
          event({ id: 8, content: 'C', user: 'u4', type: 'click', ts: cur + 6_000, eng: 0, pct: 0 }),
          event({ id: 9, content: 'C', user: 'u5', type: 'click', ts: cur + 7_000, eng: 0, pct: 0 }),
          event({ id: 10, content: 'C', user: 'u5', type: 'click', ts: cur + 8_000, eng: 0, pct: 0 }),
        ]),
      );
      const client = admin;
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
        last_event_ts: new Date(cur + 5_000).toISOString(),
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
    const sink = await startSink(env.config, p);
    try {
      const before = await tooOldCount();
      await sink.write(
        batch([
          event({ id: 1, content: 'A', ts: cur + 1_000 }),
          event({ id: 2, content: 'A', ts: cur - 10 * MIN + 59_000 }), // minute c-10: just outside a 10-minute window
          event({ id: 3, content: 'A', ts: cur - 9 * MIN }), // late but in the oldest minute of the window
          event({ id: 4, content: 'A', ts: cur - 60 * MIN }),
        ]),
      );
      assert.equal((await tooOldCount()) - before, 2);
      const r = reader(admin, p);
      assert.equal(await r.windowCount(), 2);
      assert.equal((await r.contentStats('A'))?.events, 2);
      // One minute later the oldest bucket has left the window; ten minutes later all of them.
      assert.equal(await reader(admin, p, 10, () => NOW + MIN).windowCount(), 1);
      assert.equal(await reader(admin, p, 10, () => NOW + 10 * MIN).windowCount(), 0);
      assert.deepEqual(await reader(admin, p, 10, () => NOW + 10 * MIN).topContent({ limit: 5 }), []);
      // Every bucket key carries its expiry: end of minute m + window + 1, plus the margin.
      const m = minuteOf(cur - 9 * MIN);
      const expected = minuteExpireAt(m, 10, DEFAULT_MARGIN_SECONDS) * 1000;
      for (const suffix of ['eng', 'cnt', 'n', 'ids', 's', 'u:A']) {
        assert.equal(await admin.pExpireTime(`${p}rs:m:${m}:${suffix}`), expected, suffix);
      }
      assert.ok(
        (await admin.pExpireTime(`${p}rs:recent:A`)) >=
          minuteExpireAt(minuteOf(cur), 10, DEFAULT_MARGIN_SECONDS) * 1000,
      );
      assert.equal(
        await admin.exists(`${p}rs:m:${minuteOf(cur - 10 * MIN)}:n`),
        0,
        'nothing written for a minute outside the window',
      );
    } finally {
      await sink.close();
    }
  });

  it('changes nothing when a batch is replayed, by the same or a restarted sink, and counts only the new part of an overlap', async () => {
    const p = prefix();
    const events = Array.from({ length: 12 }, (_, i) =>
      event({
        id: 100 + i,
        content: `C${i % 3}`,
        user: `u${i % 5}`,
        type: i % 4 === 0 ? 'finish' : 'play',
        ts: cur - (i % 4) * MIN + i * 1000,
        eng: i + 0.5,
        pct: i,
      }),
    );
    const sink = await startSink(env.config, p);
    const first = batch(events.slice(0, 8), 0);
    await sink.write(first);
    const afterFirst = await snapshot(admin, p);
    await sink.write(first);
    assert.deepEqual(await snapshot(admin, p), afterFirst, 'same sink, same batch');
    await sink.close();
    const restarted = await startSink(env.config, p);
    try {
      assert.deepEqual(await restarted.storedOffsets(TOPIC, [0]), new Map([[0, '8']]));
      await restarted.write(first);
      assert.deepEqual(await snapshot(admin, p), afterFirst, 'restarted sink, same batch');
      // A batch overlapping the stored offset: offsets 5-7 were applied, 8-11 are new.
      await restarted.write(batch(events.slice(5), 5));
      const r = reader(admin, p);
      assert.equal(await r.windowCount(), 12);
      const reference = `${env.config.REDIS_KEY_PREFIX}${++n}:`;
      const once = await startSink(env.config, reference);
      await once.write(batch(events, 0));
      await once.close();
      const strip = (s: Record<string, unknown>, pre: string) =>
        Object.fromEntries(Object.entries(s).map(([k, v]) => [k.slice(pre.length), v]));
      const isState = (k: string) => k.endsWith('rs:state'); // differs only by its random epoch
      assert.deepEqual(
        strip(await snapshot(admin, p, isState), p),
        strip(await snapshot(admin, reference, isState), reference),
        'equal to writing each event once',
      );
    } finally {
      await restarted.close();
    }
  });

  it('counts only the new part of an overlap written by an instance that never read the stored offset', async () => {
    const p = prefix();
    const events = Array.from({ length: 10 }, (_, i) =>
      event({
        id: 300 + i,
        content: `O${i % 2}`,
        user: `u${i % 3}`,
        ts: cur - (i % 2) * MIN + i * 1000,
        eng: i,
        pct: i,
      }),
    );
    const a = await startSink(env.config, p);
    const b = await startSink(env.config, p);
    try {
      await a.write(batch(events.slice(0, 6), 0));
      // b knows neither the epoch nor the stored offset (6): the script names the overlap and b
      // sends offsets 6-9 only.
      await b.write(batch(events.slice(3), 3));
      const reference = `${env.config.REDIS_KEY_PREFIX}${++n}:`;
      const once = await startSink(env.config, reference);
      await once.write(batch(events, 0));
      await once.close();
      const strip = (s: Record<string, unknown>, pre: string) =>
        Object.fromEntries(Object.entries(s).map(([k, v]) => [k.slice(pre.length), v]));
      const isState = (k: string) => k.endsWith('rs:state');
      assert.deepEqual(
        strip(await snapshot(admin, p, isState), p),
        strip(await snapshot(admin, reference, isState), reference),
      );
      assert.deepEqual(await b.storedOffsets(TOPIC, [0]), new Map([[0, '10']]));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('ignores backfill re-sends and duplicates inside a batch (dedupe by event id within the window)', async () => {
    const p = prefix();
    const spec = (i: number) => ({
      id: 500 + i,
      content: `K${i % 2}`,
      user: `u${i}`,
      ts: cur - (i % 3) * MIN + i * 100,
      eng: 2 * i,
      pct: i,
    });
    const stream = Array.from({ length: 6 }, (_, i) => event(spec(i)));
    const sink = await startSink(env.config, p);
    try {
      await sink.write(batch([...stream, event(spec(0))], 0, 0)); // event 500 twice in one batch
      const r = reader(admin, p);
      const view = async () => ({
        top: await r.topContent({ limit: 10 }),
        k0: await r.contentStats('K0'),
        k1: await r.contentStats('K1'),
        count: await r.windowCount(),
        recent: (await r.recentEvents('K0', 10)).map((e) => [e.event_id, e.origin]),
      });
      const expected = await view();
      assert.equal(expected.count, 6);
      const isState = (k: string) => k.endsWith('rs:state');
      const data = await snapshot(admin, p, isState);
      // The backfill re-sends the same events (other offsets, other partition, origin backfill),
      // and the stream delivers one again.
      const backfill = stream.map((e) => ({
        ...e,
        origin: 'backfill' as const,
        processed_ts_ms: e.processed_ts_ms + 1,
      }));
      await sink.write(batch(backfill, 40, 1));
      await sink.write(batch([stream[3]!, ...backfill.slice(0, 2)], 7, 0));
      assert.deepEqual(await view(), expected);
      assert.deepEqual(await snapshot(admin, p, isState), data);
      assert.deepEqual(
        await sink.storedOffsets(TOPIC, [0, 1]),
        new Map([
          [0, '10'],
          [1, '46'],
        ]),
      );
    } finally {
      await sink.close();
    }
  });

  it('writes a batch of many (minute, content) groups: hundreds of thousands of script arguments', async () => {
    const p = prefix();
    const sink = await startSink(env.config, p);
    try {
      const events = Array.from({ length: 8000 }, (_, i) =>
        event({ id: 9000 + i, content: `G${i}`, user: `u${i}`, ts: cur - (i % 10) * MIN + (i % 50) * 100 }),
      );
      await sink.write(batch(events, 0));
      assert.equal(await reader(admin, p).windowCount(), 8000);
      assert.equal((await reader(admin, p).contentStats('G7999'))?.events, 1);
    } finally {
      await sink.close();
    }
  });

  it('rejects records it cannot aggregate through check()', async () => {
    const sink = await startSink(env.config, prefix());
    try {
      const good = batch([event({ id: 1, content: 'A', ts: cur })]).records[0]!;
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

/** An event with duration_ms 2147483647, flagged as the processor flags it. */
function implausible(id: number, content: string, ts: number): EnrichedEvent {
  const e = event({ id, content, user: `z${id}`, ts, eng: 2147483.647, pct: 1789569.7 });
  return { ...e, duration_ms: 2147483647, quality_flags: ['pct_above_100', 'implausible_duration'] };
}

describe('redis sink: quality and identity', () => {
  it('keeps events flagged implausible_duration out of top content and the stats', async () => {
    const p = prefix();
    const sink = await startSink(env.config, p);
    try {
      await sink.write(
        batch([
          event({ id: 1, content: 'A', user: 'u1', ts: cur + 1_000, eng: 30, pct: 25 }),
          event({ id: 2, content: 'A', user: 'u2', ts: cur + 2_000, eng: 10, pct: 10 }),
          event({ id: 3, content: 'B', user: 'u1', ts: cur + 3_000, eng: 20, pct: 50 }),
        ]),
      );
      const r = reader(admin, p);
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
      await sink.write(batch([implausible(4, 'Z', cur + 4_000), implausible(5, 'B', cur + 5_000)], 3));
      assert.deepEqual(await look(), before, 'nothing moved');
      assert.equal(before.z, null);
      assert.deepEqual(await sink.storedOffsets('enriched', [0]), new Map([[0, '5']]), 'the offset advanced past them');
    } finally {
      await sink.close();
    }
  });

  it('applies a new event that reuses an id in the same minute; the same event re-sent is a duplicate', async () => {
    const p = prefix();
    const sink = await startSink(env.config, p);
    try {
      const old = event({ id: 1, content: 'A', user: 'u1', ts: cur + 1_000, eng: 5 });
      await sink.write(batch([old]));
      // After TRUNCATE … RESTART IDENTITY: id 1 again, a new event 9 s later; and the old one re-sent
      // through the topic by a backfill (new offsets, the same event).
      const reused = event({ id: 1, content: 'A', user: 'u2', ts: cur + 10_000, eng: 7 });
      await sink.write(batch([reused, { ...old, origin: 'backfill' }], 1));
      const stats = await reader(admin, p).contentStats('A');
      assert.equal(stats?.events, 2);
      assert.equal(stats?.total_engagement_seconds, 12);
    } finally {
      await sink.close();
    }
  });
});
