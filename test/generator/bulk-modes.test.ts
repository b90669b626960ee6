import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { DAY_MS, MINUTE_MS } from '../../src/generator/timeline.js';
import { generateBatch, generateHistorical } from '../../src/generator/modes.js';
import { useTestDatabase } from '../helpers/test-database.js';

/**
 * Batch and historical modes against the real PostgreSQL (an isolated database): exact counts,
 * timestamps in range, the schema's constraints, and the shape of what was generated.
 */

const NOW = Date.now();

describe('generator modes that write in bulk', () => {
  const t = useTestDatabase();
  const one = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T> => {
    const row = (await t.db.query<T>(sql, params)).rows[0];
    assert.ok(row, sql);
    return row;
  };

  test('batch: exactly --batch-size rows, stamped over the last minutes, valid and realistic', async () => {
    const summary = await generateBatch(t.env.config, { batchSize: 8000, seed: 42, windowMinutes: 10, nowMs: NOW });
    assert.equal(summary.rows, 8000);
    assert.equal(summary.interrupted, false);
    const all = await one<{ n: number; lo: Date; hi: Date }>(
      'SELECT count(*)::int AS n, min(event_ts) AS lo, max(event_ts) AS hi FROM engagement_events',
    );
    assert.equal(all.n, 8000);
    assert.ok(
      all.lo.getTime() >= NOW - 10 * MINUTE_MS && all.hi.getTime() <= NOW,
      `${all.lo.toISOString()} … ${all.hi.toISOString()}`,
    );

    const bad = await one<Record<string, number>>(`
      SELECT count(*) FILTER (WHERE e.event_type = 'click' AND e.duration_ms IS NOT NULL)::int AS click_with_duration,
             count(*) FILTER (WHERE e.event_type <> 'click' AND e.duration_ms IS NULL)::int AS play_without_duration,
             count(*) FILTER (WHERE c.length_seconds IS NOT NULL AND e.duration_ms > c.length_seconds * 1000)::int AS longer_than_content,
             count(*) FILTER (WHERE e.event_ts < c.publish_ts)::int AS before_publication,
             count(*) FILTER (WHERE NOT (e.raw_payload ? 'session_id' AND e.raw_payload ? 'app_version'))::int AS payload_missing_keys,
             count(*) FILTER (WHERE e.user_id IS NULL OR e.device IS NULL OR e.content_id IS NULL)::int AS nulls
        FROM engagement_events e JOIN content c ON c.id = e.content_id`);
    assert.deepEqual(bad, {
      click_with_duration: 0,
      play_without_duration: 0,
      longer_than_content: 0,
      before_publication: 0,
      payload_missing_keys: 0,
      nulls: 0,
    });

    const mix = await one<{ types: number; devices: number; users: number; sessions: number; content: number }>(`
      SELECT count(DISTINCT event_type)::int AS types, count(DISTINCT device)::int AS devices, count(DISTINCT user_id)::int AS users,
             count(DISTINCT raw_payload->>'session_id')::int AS sessions, count(DISTINCT content_id)::int AS content
        FROM engagement_events`);
    assert.equal(mix.types, 4);
    assert.ok(mix.devices >= 5, `${mix.devices} devices`);
    assert.ok(mix.users < mix.sessions, `repeat users: ${mix.users} users, ${mix.sessions} sessions`);
    assert.ok(mix.content >= 40, `${mix.content} content items engaged`);
  });

  test('batch: sessions run play … finish in order, and never listen past the end', async () => {
    const order = await one<{ not_first: number; finish_not_last: number; over_length: number; finished: number }>(`
      WITH s AS (
        SELECT e.event_type, e.duration_ms, c.length_seconds, e.raw_payload->>'session_id' AS sid,
               row_number() OVER (PARTITION BY e.raw_payload->>'session_id' ORDER BY e.event_ts, e.id) AS rn,
               count(*) OVER (PARTITION BY e.raw_payload->>'session_id') AS cnt,
               min(CASE WHEN e.event_type <> 'click' THEN e.event_ts END) OVER (PARTITION BY e.raw_payload->>'session_id') AS first_listen
          FROM engagement_events e JOIN content c ON c.id = e.content_id)
      SELECT count(*) FILTER (WHERE event_type = 'click' AND rn > 1)::int AS not_first,
             count(*) FILTER (WHERE event_type = 'finish' AND rn <> cnt)::int AS finish_not_last,
             (SELECT count(*)::int FROM (SELECT sid FROM s WHERE length_seconds IS NOT NULL GROUP BY sid
                                          HAVING sum(coalesce(duration_ms, 0)) > max(length_seconds) * 1000) o) AS over_length,
             count(*) FILTER (WHERE event_type = 'finish')::int AS finished
        FROM s`);
    assert.equal(order.not_first, 0, 'a click only ever opens a session');
    assert.equal(order.finish_not_last, 0, 'finish is always the last event of its session');
    assert.equal(order.over_length, 0, 'per session, time listened ≤ content length');
    assert.ok(order.finished > 0);
    const firstListen = await one<{ n: number }>(`
      SELECT count(*)::int AS n FROM (
        SELECT DISTINCT ON (raw_payload->>'session_id') event_type FROM engagement_events
         WHERE event_type <> 'click' ORDER BY raw_payload->>'session_id', event_ts, id) f
       WHERE event_type <> 'play'`);
    assert.equal(firstListen.n, 0, 'the first non-click event of every session is a play');
  });

  test('batch: popularity is skewed — the top 10% of content gets far more than the bottom half', async () => {
    const rows = (
      await t.db.query<{ n: number }>(`
      SELECT count(e.id)::int AS n FROM content c LEFT JOIN engagement_events e ON e.content_id = c.id
       GROUP BY c.id ORDER BY n DESC`)
    ).rows.map((r) => r.n);
    const top = rows.slice(0, Math.ceil(rows.length / 10)).reduce((a, b) => a + b, 0);
    const bottom = rows.slice(Math.floor(rows.length / 2)).reduce((a, b) => a + b, 0);
    assert.ok(top > 3 * bottom, `top 10% ${top} vs bottom half ${bottom}`);
  });

  test('batch: the same seed and instant write the same rows again (ids aside)', async () => {
    await t.db.query('TRUNCATE engagement_events');
    const opts = { batchSize: 3000, seed: 'again', nowMs: NOW };
    await generateBatch(t.env.config, opts);
    await generateBatch(t.env.config, opts);
    const cols = 'content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload::text';
    const diff = await one<{ n: number }>(`
      SELECT count(*)::int AS n FROM (
        (SELECT ${cols} FROM engagement_events ORDER BY id LIMIT 3000)
        EXCEPT ALL
        (SELECT ${cols} FROM engagement_events ORDER BY id OFFSET 3000)) d`);
    assert.equal(diff.n, 0);
    assert.equal((await one<{ n: number }>('SELECT count(*)::int AS n FROM engagement_events')).n, 6000);
  });

  test('historical: exactly days × events-per-day rows over the last D days, with a daily rhythm', async () => {
    await t.db.query('TRUNCATE engagement_events');
    const summary = await generateHistorical(t.env.config, {
      days: 3,
      eventsPerDay: 4000,
      seed: 5,
      nowMs: NOW,
      chunkRows: 5000,
    });
    assert.equal(summary.rows, 12_000);
    const all = await one<{ n: number; lo: Date; hi: Date; days: number }>(
      `SELECT count(*)::int AS n, min(event_ts) AS lo, max(event_ts) AS hi,
              count(DISTINCT floor(extract(epoch FROM ($1::timestamptz - event_ts)) / 86400))::int AS days FROM engagement_events`,
      [new Date(NOW)],
    );
    assert.equal(all.n, 12_000);
    assert.ok(
      all.lo.getTime() >= NOW - 3 * DAY_MS && all.hi.getTime() <= NOW,
      `${all.lo.toISOString()} … ${all.hi.toISOString()}`,
    );
    assert.ok(all.days >= 3, 'every day has events');
    const hours = await one<{ night: number; evening: number }>(`
      SELECT count(*) FILTER (WHERE extract(hour FROM event_ts AT TIME ZONE 'UTC') BETWEEN 2 AND 4)::int AS night,
             count(*) FILTER (WHERE extract(hour FROM event_ts AT TIME ZONE 'UTC') BETWEEN 18 AND 20)::int AS evening
        FROM engagement_events`);
    assert.ok(hours.evening > 3 * hours.night, `evening ${hours.evening} vs night ${hours.night}`);
    const bad = await one<{ n: number }>(`
      SELECT count(*)::int AS n FROM engagement_events e JOIN content c ON c.id = e.content_id
       WHERE (e.event_type = 'click') <> (e.duration_ms IS NULL) OR e.event_ts < c.publish_ts
          OR (c.length_seconds IS NOT NULL AND e.duration_ms > c.length_seconds * 1000)`);
    assert.equal(bad.n, 0);
  });
});
