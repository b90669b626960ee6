import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { runBackfill } from '../../src/backfill/run.js';
import { createLogger } from '../../src/core/logger.js';
import type { DlqEntry, EnrichedEvent } from '../../src/core/types.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { parseValues, readTopic } from '../processor/kafka-helpers.js';

/**
 * A backfill over a row whose enriched event exceeds KAFKA_MESSAGE_MAX_BYTES (a 2 MB raw_payload)
 * does not fail its page forever: that event goes to the DLQ (RECORD_TOO_LARGE, the entry capped to
 * fit), the others are delivered.
 */

let env: TestEnv;
let db: pg.Client;
const CONTENT_ID = '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d';

before(async () => {
  env = await createTestEnv();
  db = new pg.Client({ connectionString: env.config.databaseUrl });
  await db.connect();
  await db.query(
    `INSERT INTO content (id, slug, title, content_type, length_seconds, publish_ts) VALUES ($1, 'big', 'Big', 'video', 600, '2025-08-01T00:00:00Z')`,
    [CONTENT_ID],
  );
  await db.query(
    `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload) VALUES
     ($1, gen_random_uuid(), 'play', '2025-08-03T10:00:00Z', 1000, 'web', '{"a": 1}'),
     ($1, gen_random_uuid(), 'play', '2025-08-03T10:00:01Z', 1000, 'web', jsonb_build_object('blob', repeat('x', 2097152))),
     ($1, gen_random_uuid(), 'play', '2025-08-03T10:00:02Z', 1000, 'web', '{"a": 3}')`,
    [CONTENT_ID],
  );
});

after(async () => {
  await db?.end();
  await env?.cleanup();
});

test(
  'an enriched event too large for Kafka is parked, capped; the rest is delivered',
  { timeout: 120_000 },
  async () => {
    const ids = (
      await db.query<{ id: string }>('SELECT id::text AS id FROM engagement_events ORDER BY event_ts')
    ).rows.map((r) => r.id);
    const res = await runBackfill(
      env.config,
      { startDate: '2025-08-03', endDate: '2025-08-03', pageSize: 100, progress: false },
      createLogger('silent'),
    );
    assert.equal(res.read, 3);
    assert.deepEqual(res.parked, { backfill: 1 });
    const events = parseValues<EnrichedEvent>(
      await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_ENRICHED, 60_000),
    );
    assert.deepEqual(events.map((e) => e.event_id).sort(), [ids[0], ids[2]].sort());
    const raw = await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_DLQ, 60_000);
    const dlq = parseValues<DlqEntry>(raw);
    assert.equal(dlq.length, 1);
    const entry = dlq[0];
    assert.match(entry?.reason ?? '', /^RECORD_TOO_LARGE: enriched event \d+ takes \d+ bytes/);
    assert.equal(entry?.stage, 'backfill');
    assert.equal(entry?.offset, ids[1]);
    assert.equal(entry?.value_truncated, true);
    assert.ok((entry?.value_bytes ?? 0) > 2_097_152);
    assert.ok((raw[0]?.value?.length ?? Infinity) <= env.config.KAFKA_MESSAGE_MAX_BYTES, 'the DLQ record fits');
  },
);
