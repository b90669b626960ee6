import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { runBackfill } from '../../src/backfill/run.js';
import { createLogger } from '../../src/core/logger.js';
import type { DlqEntry, EnrichedEvent } from '../../src/core/types.js';
import { generateHistorical } from '../../src/generator/modes.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { parseValues, readTopic } from '../processor/kafka-helpers.js';

/**
 * Backfill on the real stack: every row of the range (and none outside it) reaches the enriched
 * topic enriched as the stream would, bad rows reach the DLQ with their reason, an interrupted run
 * resumes after its last confirmed page, and a re-run re-sends the same event ids (the sinks dedupe
 * on them: see the warehouse and Redis tests and the end-to-end proof).
 */

let env: TestEnv;
let db: pg.Client;
const log = createLogger('silent');

before(async () => {
  env = await createTestEnv();
  db = new pg.Client({ connectionString: env.config.databaseUrl });
  await db.connect();
  // Four days of history anchored at a fixed noon, so the range below is known exactly.
  const nowMs = Date.parse('2025-08-05T12:00:00Z');
  await generateHistorical(env.config, { days: 4, eventsPerDay: 3000, seed: 7, nowMs });
  const content = await db.query<{ id: string }>('SELECT id FROM content WHERE length_seconds IS NOT NULL LIMIT 1');
  // Deliberately bad rows inside the range: no content, a negative duration.
  await db.query(
    `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload) VALUES
     (NULL, gen_random_uuid(), 'play', '2025-08-03T10:00:00Z', 1000, 'web', '{}'),
     ($1, gen_random_uuid(), 'pause', '2025-08-03T10:00:01Z', -5, 'web', '{}')`,
    [content.rows[0]?.id],
  );
});

after(async () => {
  await db?.end();
  await env?.cleanup();
});

async function expectedIds(fromIso: string, untilIso: string): Promise<Set<string>> {
  const res = await db.query<{ id: string }>(
    `SELECT id::text AS id FROM engagement_events WHERE event_ts >= $1 AND event_ts < $2 AND content_id IS NOT NULL AND (duration_ms IS NULL OR duration_ms >= 0)`,
    [fromIso, untilIso],
  );
  return new Set(res.rows.map((r) => r.id));
}

test('a range is delivered whole, enriched, with bad rows in the DLQ', async () => {
  const want = await expectedIds('2025-08-02T00:00:00Z', '2025-08-04T00:00:00Z');
  assert.ok(want.size > 1000, `history generated in range: ${want.size}`);
  const res = await runBackfill(
    env.config,
    { startDate: '2025-08-02', endDate: '2025-08-03', pageSize: 1000, progress: false },
    log,
  );
  assert.equal(res.read, want.size + 2);
  assert.equal(res.delivered, want.size);
  assert.equal(res.dlq, 2);
  assert.equal(res.resumed, false);

  const events = parseValues<EnrichedEvent>(
    await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_ENRICHED, 60000),
  );
  assert.deepEqual(new Set(events.map((e) => e.event_id)), want);
  assert.equal(events.length, want.size, 'each event once');
  for (const e of events) {
    assert.equal(e.origin, 'backfill');
    assert.ok(e.event_date === '2025-08-02' || e.event_date === '2025-08-03', e.event_date);
    assert.equal(e.engagement_seconds, e.duration_ms === null ? null : e.duration_ms / 1000);
    assert.ok(e.content_slug.length > 0);
  }
  const dlq = parseValues<DlqEntry>(await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_DLQ));
  assert.equal(dlq.length, 2);
  assert.deepEqual(
    dlq.map((d) => d.stage),
    ['backfill', 'backfill'],
  );
  assert.ok(
    dlq.every((d) => d.reason.length > 0 && d.value_base64),
    'each with a reason and the original row',
  );
});

test('an interrupted backfill resumes after its last confirmed page', async () => {
  const want = await expectedIds('2025-08-04T00:00:00Z', '2025-08-05T00:00:00Z');
  const abort = new AbortController();
  let pages = 0;
  // Stop after the second page is confirmed, as a kill between pages would.
  const first = runBackfill(
    env.config,
    { startDate: '2025-08-04', endDate: '2025-08-04', pageSize: 500, progress: false, signal: abort.signal },
    log,
  );
  const poll = setInterval(async () => {
    const r = await db.query<{ delivered: string }>(
      `SELECT delivered::text FROM engage_backfill_progress WHERE range_key = '2025-08-04..2025-08-04'`,
    );
    pages = Number(r.rows[0]?.delivered ?? 0);
    if (pages >= 1000) abort.abort();
  }, 5);
  const r1 = await first;
  clearInterval(poll);
  assert.ok(r1.read < want.size, `interrupted early: read ${r1.read} of ${want.size}`);
  const r2 = await runBackfill(
    env.config,
    { startDate: '2025-08-04', endDate: '2025-08-04', pageSize: 500, progress: false },
    log,
  );
  assert.equal(r2.resumed, true);
  assert.equal(r1.read + r2.read, want.size, 'the second run reads exactly what the first did not');
  const events = parseValues<EnrichedEvent>(
    await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_ENRICHED, 60000),
  );
  const day = events.filter((e) => e.event_date === '2025-08-04');
  assert.deepEqual(new Set(day.map((e) => e.event_id)), want);
});

test('running a finished range again re-sends the same event ids', async () => {
  const before = parseValues<EnrichedEvent>(
    await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_ENRICHED, 60000),
  );
  const res = await runBackfill(env.config, { startDate: '2025-08-04', endDate: '2025-08-04', progress: false }, log);
  assert.equal(res.resumed, false);
  const afterEvents = parseValues<EnrichedEvent>(
    await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_ENRICHED, 60000),
  );
  assert.equal(afterEvents.length - before.length, res.delivered);
  // Partitions interleave, so compare per-id counts: each id of the day now appears once more.
  const counts = (list: EnrichedEvent[]) => {
    const m = new Map<string, number>();
    for (const e of list) m.set(e.event_id, (m.get(e.event_id) ?? 0) + 1);
    return m;
  };
  const b = counts(before);
  const a = counts(afterEvents);
  const dayIds = new Set(before.filter((e) => e.event_date === '2025-08-04').map((e) => e.event_id));
  const grown = [...a].filter(([id, n]) => n === (b.get(id) ?? 0) + 1).map(([id]) => id);
  assert.deepEqual(new Set(grown), dayIds, 'the same ids again (the sinks dedupe them), nothing else');
});
