import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PipelineError } from '../../../src/core/errors.js';
import { redisSinkFactory } from '../../../src/sinks/redis/index.js';
import { MINUTE_MS, minuteOf } from '../../../src/sinks/redis/keys.js';
import { Memo } from '../../../src/sinks/redis/memo.js';
import type { RedisClient } from '../../../src/sinks/redis/lua-script.js';
import { RedisReader, createRedisReader } from '../../../src/sinks/redis/read.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';
import { sleep } from '../../helpers/wait.js';
import { MIN, NOW, adminClient, batch, event, reader, sinkContext, startSink, wipe } from './redis-fixtures.js';

/** The read module the API uses: arguments, unknown content, recent events, the top-content cache. */

let env: TestEnv;
let admin: RedisClient;
let n = 0;
const prefix = () => `${env.config.REDIS_KEY_PREFIX}${++n}:`;
const cur = minuteOf(NOW) * MINUTE_MS;

before(async () => {
  env = await createTestEnv({ REDIS_RECENT_EVENTS: '3', REDIS_AGGREGATION_WINDOW_MINUTES: '5' });
  admin = await adminClient(env.config);
});

after(async () => {
  await wipe(admin, env.config.REDIS_KEY_PREFIX);
  await admin.close();
  await env.cleanup();
});

const invalid = (err: unknown) => err instanceof PipelineError && err.code === 'INVALID_VALUE';

describe('redis reader', () => {
  it('validates its arguments against the configured window', async () => {
    const r = reader(admin, prefix(), 5);
    await assert.rejects(r.topContent({ limit: 10, windowMinutes: 6 }), invalid);
    await assert.rejects(r.topContent({ limit: 0 }), invalid);
    await assert.rejects(r.topContent({ limit: 1.5 }), invalid);
    await assert.rejects(r.contentStats('A', 0), invalid);
    await assert.rejects(r.windowCount(6), invalid);
    await assert.rejects(r.recentEvents('A', 0), invalid);
    assert.deepEqual(await r.topContent({ limit: 10, windowMinutes: 5 }), []);
    assert.equal(await r.ping(), true);
  });

  it('returns null for unknown content and zeros for known content without events in the window', async () => {
    const p = prefix();
    const sink = await startSink(env.config, p);
    try {
      await sink.write(batch([event({ id: 1, content: 'old', ts: cur - 3 * MIN, eng: 7, pct: 5 })]));
      const r = reader(admin, p, 5);
      assert.equal(await r.contentStats('nobody'), null);
      assert.equal((await r.contentStats('old'))?.events, 1);
      assert.deepEqual(await r.contentStats('old', 2), {
        content_id: 'old',
        window_minutes: 2,
        slug: 'slug-old',
        title: 'Title old',
        content_type: 'video',
        events: 0,
        plays: 0,
        pauses: 0,
        finishes: 0,
        clicks: 0,
        unique_users: 0,
        total_engagement_seconds: 0,
        avg_engagement_seconds: null,
        avg_engagement_pct: null,
        completion_rate: null,
        last_event_ts: null,
      });
      assert.deepEqual(await r.recentEvents('nobody', 5), []);
    } finally {
      await sink.close();
    }
  });

  it('keeps REDIS_RECENT_EVENTS events per content, newest event time first, whatever the arrival order', async () => {
    const p = prefix();
    const sink = await startSink(env.config, p);
    try {
      const ts = [5, 1, 9, 3, 7].map((s) => cur + s * 1000);
      await sink.write(batch(ts.slice(0, 3).map((t, i) => event({ id: 10 + i, content: 'R', ts: t }))));
      await sink.write(
        batch(
          ts.slice(3).map((t, i) => event({ id: 13 + i, content: 'R', ts: t })),
          3,
        ),
      );
      const recent = await reader(admin, p, 5).recentEvents('R', 10);
      assert.deepEqual(
        recent.map((e) => [e.event_id, e.event_ts]),
        [
          ['12', new Date(cur + 9000).toISOString()],
          ['14', new Date(cur + 7000).toISOString()],
          ['10', new Date(cur + 5000).toISOString()],
        ],
      );
      assert.equal(recent[0]?.content_title, 'Title R', 'whole enriched events are returned');
      assert.equal((await reader(admin, p, 5).recentEvents('R', 1)).length, 1);
      // Events that fell out of the window are not returned, even before the list is trimmed.
      assert.deepEqual(await reader(admin, p, 5, () => NOW + 5 * MIN).recentEvents('R', 10), []);
    } finally {
      await sink.close();
    }
  });

  it('serves top content from a union cached for cacheMs, per window length', async () => {
    const p = prefix();
    const sink = await startSink(env.config, p);
    try {
      await sink.write(
        batch([
          event({ id: 1, content: 'X', ts: cur, eng: 3 }),
          event({ id: 2, content: 'Y', ts: cur - 2 * MIN, eng: 5 }),
        ]),
      );
      const cached = new RedisReader(admin, { prefix: p, windowMinutes: 5, cacheMs: 60_000, now: () => NOW });
      assert.deepEqual(
        (await cached.topContent({ limit: 5 })).map((e) => e.content_id),
        ['Y', 'X'],
      );
      await sink.write(batch([event({ id: 3, content: 'X', ts: cur, eng: 10 })], 2));
      assert.deepEqual(
        (await cached.topContent({ limit: 5 })).map((e) => e.content_id),
        ['Y', 'X'],
        'served from the cache',
      );
      const otherProcess = new RedisReader(admin, { prefix: p, windowMinutes: 5, cacheMs: 60_000, now: () => NOW });
      assert.deepEqual(
        (await otherProcess.topContent({ limit: 5 })).map((e) => e.content_id),
        ['Y', 'X'],
        'the union cached in Redis is shared',
      );
      assert.deepEqual(
        (await cached.topContent({ limit: 5, windowMinutes: 4 })).map((e) => [e.content_id, e.engagement_seconds]),
        [
          ['X', 13],
          ['Y', 5],
        ],
      );
      assert.deepEqual(
        (await reader(admin, p, 5).topContent({ limit: 5 })).map((e) => e.content_id),
        ['X', 'Y'],
        'uncached reader sees the write',
      );
      assert.deepEqual(
        (await reader(admin, p, 5).topContent({ limit: 5, windowMinutes: 1 })).map((e) => [e.content_id, e.events]),
        [['X', 2]],
      );
    } finally {
      await sink.close();
    }
  });

  it('reports Redis failures as SERVICE_UNREACHABLE', async () => {
    const { reader: r, close } = await createRedisReader(env.config, { cacheMs: 0 });
    await close();
    const unreachable = (err: unknown) => err instanceof PipelineError && err.code === 'SERVICE_UNREACHABLE';
    await assert.rejects(r.topContent({ limit: 3 }), unreachable);
    await assert.rejects(r.contentStats('A'), unreachable);
    await assert.rejects(r.recentEvents('A', 3), unreachable);
    await assert.rejects(r.windowCount(), unreachable);
    assert.equal(await r.ping(), false);
  });

  it('shares one load between concurrent identical calls and does not cache failures', async () => {
    let loads = 0;
    const memo = new Memo<number>(10_000);
    const load = async () => {
      loads++;
      await sleep(20); // a load that takes time, so the three calls overlap
      return loads;
    };
    assert.deepEqual(
      await Promise.all([memo.get('k', 0, load), memo.get('k', 1, load), memo.get('k', 2, load)]),
      [1, 1, 1],
    );
    assert.equal(await memo.get('k', 20_000, load), 2, 'expired entries reload');
    await assert.rejects(memo.get('f', 0, () => Promise.reject(new Error('down'))));
    assert.equal(await memo.get('f', 1, load), 3);
    assert.equal(await new Memo<number>(0).get('k', 0, load), 4, 'ttl 0 never caches');
  });

  it('works end to end on the real clock through the factory and createRedisReader', async () => {
    const p = prefix();
    const config = { ...env.config, REDIS_KEY_PREFIX: p };
    assert.deepEqual(redisSinkFactory.batching?.(config), { maxRecords: 5000, maxWaitMs: 100, paced: true });
    const sink = redisSinkFactory.create(sinkContext(config));
    await sink.start();
    const { reader: live, close } = await createRedisReader(config, { cacheMs: 0 });
    try {
      const now = Date.now();
      await sink.write(
        batch([
          event({ id: 1, content: 'L', user: 'a', ts: now - 1000, eng: 4 }),
          event({ id: 2, content: 'L', user: 'b', ts: now, eng: 6 }),
        ]),
      );
      const stats = await live.contentStats('L');
      assert.equal(stats?.events, 2);
      assert.equal(stats?.unique_users, 2);
      assert.equal(stats?.total_engagement_seconds, 10);
      assert.equal(await live.windowCount(), 2);
      assert.equal(live.windowMinutes, 5);
    } finally {
      await close();
      await sink.close();
    }
  });
});
