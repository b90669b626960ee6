import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  content,
  enriched,
  redisClient,
  startTestApi,
  wipePrefix,
  writeThroughSink,
  type TestApi,
} from './fixtures.js';

/**
 * /top-content, /content/:id/stats and /content/:id/recent over data the real Redis sink wrote:
 * ranking, window and `by`, stats, recent events, and every 400 and 404.
 */

let env: TestEnv;
let api: TestApi;
const pod = content('Deep Dive Podcast', 'podcast');
const vid = content('Launch Video', 'video');
const news = content('Weekly Newsletter', 'newsletter');
const stale = content('Old Favourite', 'video');

before(async () => {
  env = await createTestEnv({ REDIS_RECENT_EVENTS: '50' });
  const now = Date.now();
  const events = [
    // The podcast: most engagement seconds (3 × 200 s); the newsletter: most events (5 × 2 s).
    ...[1, 2, 3].map((i) => enriched(pod, { ts: now - i * 1000, seconds: 200, user: `u${i}` })),
    enriched(pod, { ts: now - 500, type: 'finish', seconds: 10, user: 'u1' }),
    ...[1, 2].map((i) => enriched(vid, { ts: now - i * 1000, seconds: 100 })),
    ...[1, 2, 3, 4, 5].map((i) => enriched(news, { ts: now - i * 1000, type: 'click', seconds: 2 })),
    // Five minutes ago: inside the 10-minute window, outside a 2-minute one.
    ...[1, 2, 3, 4, 5, 6].map(() => enriched(stale, { ts: now - 5 * 60_000, seconds: 300 })),
  ];
  await writeThroughSink(env.config, events);
  api = await startTestApi(env.config);
});

after(async () => {
  await api.close();
  const redis = await redisClient(env.config);
  await wipePrefix(redis, env.config.REDIS_KEY_PREFIX);
  await redis.close();
  await env.cleanup();
});

const get = (url: string) => api.app.inject({ url });

describe('/top-content', () => {
  it('ranks by engagement seconds over the whole window by default', async () => {
    const res = await get('/top-content');
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.window_minutes, 10);
    assert.equal(body.by, 'engagement');
    assert.equal(body.limit, 10);
    assert.deepEqual(
      body.items.map((i: { title: string }) => i.title),
      ['Old Favourite', 'Deep Dive Podcast', 'Launch Video', 'Weekly Newsletter'],
    );
    assert.deepEqual(body.items[1], {
      rank: 2,
      content_id: pod.id,
      slug: 'deep-dive-podcast',
      title: 'Deep Dive Podcast',
      content_type: 'podcast',
      engagement_seconds: 610,
      events: 4,
    });
  });

  it('honours limit, window and by', async () => {
    const recent = (await get('/top-content?window=2&limit=2')).json();
    assert.equal(recent.window_minutes, 2);
    assert.deepEqual(
      recent.items.map((i: { content_id: string }) => i.content_id),
      [pod.id, vid.id],
    );
    const byEvents = (await get('/top-content?by=events&window=2&limit=1')).json();
    assert.deepEqual(
      byEvents.items.map((i: { content_id: string; events: number }) => [i.content_id, i.events]),
      [[news.id, 5]],
    );
  });

  for (const [query, fragment] of [
    ['limit=0', "'limit' (got 0): accepts a whole number from 1 to 100"],
    ['limit=101', "'limit' (got 101): accepts a whole number from 1 to 100"],
    ['limit=abc', `'limit' (got "abc"): accepts a whole number from 1 to 100`],
    ['limit=2.5', `'limit' (got "2.5"): accepts a whole number from 1 to 100`],
    ['window=0', "'window' (got 0): accepts a whole number of minutes from 1 to 10"],
    ['window=11', "'window' (got 11): accepts a whole number of minutes from 1 to 10"],
    ['by=views', `'by' (got "views"): accepts engagement (total engagement seconds) or events (event count)`],
    ['limt=5', "unknown query parameter 'limt': accepts limit, window, by"],
  ] as const) {
    it(`answers 400 for ${query}, saying what is accepted`, async () => {
      const res = await get(`/top-content?${query}`);
      assert.equal(res.statusCode, 400);
      const body = res.json();
      assert.equal(body.code, 'BAD_REQUEST');
      assert.ok(body.message.includes(fragment), body.message);
    });
  }
});

describe('/content/:id/stats', () => {
  it('returns the content stats over the window', async () => {
    const res = await get(`/content/${pod.id}/stats`);
    assert.equal(res.statusCode, 200, res.body);
    const s = res.json();
    assert.equal(s.content_id, pod.id);
    assert.equal(s.title, 'Deep Dive Podcast');
    assert.equal(s.content_type, 'podcast');
    assert.equal(s.events, 4);
    assert.equal(s.plays, 3);
    assert.equal(s.finishes, 1);
    assert.equal(s.unique_users, 3);
    assert.equal(s.total_engagement_seconds, 610);
    assert.equal(s.completion_rate, 0.333);
    assert.equal(s.window_minutes, 10);
  });

  it('narrows to the window asked for, and accepts an upper-case id', async () => {
    const s = (await get(`/content/${stale.id.toUpperCase()}/stats?window=2`)).json();
    assert.equal(s.content_id, stale.id);
    assert.equal(s.events, 0);
    assert.equal((await get(`/content/${stale.id}/stats`)).json().events, 6);
  });

  it('answers 404 for content it does not know', async () => {
    const id = randomUUID();
    const res = await get(`/content/${id}/stats`);
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().code, 'UNKNOWN_CONTENT');
    assert.ok(res.json().message.includes(id));
  });

  it('answers 400 for an id that is not a UUID and for a bad window', async () => {
    const bad = await get('/content/not-a-uuid/stats');
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /'id' \(got "not-a-uuid"\): accepts a content id: a UUID/);
    const urn = await get(`/content/urn:uuid:${pod.id}/stats`);
    assert.equal(urn.statusCode, 400);
    const w = await get(`/content/${pod.id}/stats?window=-1`);
    assert.equal(w.statusCode, 400);
    assert.match(w.json().message, /'window' \(got -1\)/);
  });
});

describe('/content/:id/recent', () => {
  it('returns the newest events first, at most count', async () => {
    const res = await get(`/content/${news.id}/recent?count=3`);
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.content_id, news.id);
    assert.equal(body.count, 3);
    const times = body.events.map((e: { event_ts: string }) => Date.parse(e.event_ts));
    assert.deepEqual(
      times,
      [...times].sort((x, y) => y - x),
    );
    assert.equal(body.events[0].content_title, 'Weekly Newsletter');
    assert.equal(body.events[0].event_type, 'click');
    assert.equal((await get(`/content/${news.id}/recent`)).json().count, 5);
  });

  it('answers 404 for unknown content and 400 for a bad count or id', async () => {
    assert.equal((await get(`/content/${randomUUID()}/recent`)).statusCode, 404);
    for (const q of ['count=0', 'count=51', 'count=x']) {
      const res = await get(`/content/${news.id}/recent?${q}`);
      assert.equal(res.statusCode, 400, q);
      assert.match(res.json().message, /'count' .*accepts a whole number from 1 to 50 \(REDIS_RECENT_EVENTS\)/);
    }
    assert.equal((await get('/content/123/recent')).statusCode, 400);
  });
});

describe('unknown routes', () => {
  it('answers 404 in the same error shape', async () => {
    const res = await get('/nothing-here');
    assert.equal(res.statusCode, 404);
    assert.deepEqual(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode']);
  });
});
