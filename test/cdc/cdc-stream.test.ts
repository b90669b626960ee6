import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { startCdc, type CdcComponent } from '../../src/cdc/cdc.js';
import { createLogger } from '../../src/core/logger.js';
import { pseudonym } from '../../src/core/pseudonym.js';
import type { ChangeEvent } from '../../src/core/types.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { pgClient, readTopics, type Record as KRecord } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Snapshot then stream on the real stack: the snapshot's `r` events, inserts/updates/deletes with
 * the documented type rendering, tombstones, TOAST under both replica identities, an added column,
 * and a dropped replication connection — all through one in-process CDC.
 */

let env: TestEnv;
let db: pg.Client;
let cdc: CdcComponent | undefined;
const CONTENT_ID = '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d';
const USER_ID = '11111111-2222-4333-8444-555555555555';

before(async () => {
  env = await createTestEnv({ CDC_HEARTBEAT_SECONDS: '1', CDC_COMMIT_INTERVAL_MS: '20' });
  db = await pgClient(env.config);
  await db.query(
    `INSERT INTO content (id, slug, title, content_type, length_seconds, publish_ts) VALUES ($1, 'cdc-test', 'CDC test', 'video', 600, '2025-08-01T00:00:00Z')`,
    [CONTENT_ID],
  );
  // Existing rows (the snapshot's): one full, one mostly NULL.
  await db.query(
    `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload) VALUES
       ($1, $2, 'play', '2025-08-01 10:00:00.123456+00', 1500, 'ios', '{"a": 1, "nested": {"b": [1, 2]}}'),
       (NULL, NULL, NULL, '2025-08-01 12:00:00+02', NULL, NULL, NULL)`,
    [CONTENT_ID, USER_ID],
  );
});

after(async () => {
  await cdc?.stop();
  await db?.end();
  await env?.cleanup();
});

const events = (recs: KRecord[]) => recs.filter((r) => r.topic === env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS);
const withKey = (recs: KRecord[], id: string) => recs.filter((r) => r.key === JSON.stringify({ id }));
const valueOf = (r: KRecord | undefined): ChangeEvent => {
  assert.ok(r?.value, 'a change event');
  return r.value;
};

test(
  'snapshot then stream: ops, envelope, type rendering, tombstones, TOAST, schema drift, reconnect',
  { timeout: 90_000 },
  async () => {
    cdc = await startCdc(env.config, createLogger('warn', 'cdc-test'));
    const { config } = env;
    const snapshotIds = (await db.query<{ id: string }>('SELECT id::text FROM engagement_events ORDER BY id')).rows.map(
      (r) => r.id,
    );
    const contentCount = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM content')).rows[0]?.n);

    // Streamed changes, each in its own transaction.
    const ins = await db.query<{ id: string }>(
      `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload)
     VALUES ($1, $2, 'finish', '2025-08-02 08:30:00.5+00', 42, 'web', '{"x": "y"}'), ($1, $2, 'click', '2025-08-02 08:31:00+00', 0, 'android', '[]')
     RETURNING id::text`,
      [CONTENT_ID, USER_ID],
    );
    const [a, b] = ins.rows.map((r) => r.id) as [string, string];
    await db.query('UPDATE engagement_events SET duration_ms = 43 WHERE id = $1', [a]);
    await db.query('DELETE FROM engagement_events WHERE id = $1', [b]);
    await db.query('UPDATE content SET length_seconds = 700 WHERE id = $1', [CONTENT_ID]);

    const topics = [config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, config.KAFKA_TOPIC_CONTENT];
    let recs = await readTopics(
      config,
      topics,
      (r) =>
        withKey(events(r), b).length >= 3 &&
        withKey(events(r), a).length >= 2 &&
        snapshotIds.every((id) => withKey(events(r), id).length >= 1) &&
        r.filter((x) => x.topic === config.KAFKA_TOPIC_CONTENT).length >= contentCount + 1,
    );

    // Snapshot: every existing row once as `r`, content first, markers first/last.
    const snap = recs.filter((r) => r.value?.op === 'r');
    assert.equal(snap.filter((r) => r.topic === config.KAFKA_TOPIC_CONTENT).length, contentCount);
    assert.deepEqual(
      events(snap)
        .map((r) => JSON.parse(r.key ?? '{}').id)
        .sort(),
      [...snapshotIds].sort(),
    );
    assert.equal(snap.filter((r) => r.value?.source.snapshot === 'first').length, 1);
    assert.equal(snap.filter((r) => r.value?.source.snapshot === 'last').length, 1);
    assert.equal(valueOf(snap.find((r) => r.value?.source.snapshot === 'first')).source.table, 'content');
    const s0 = valueOf(withKey(snap, snapshotIds[0] ?? '')[0]);
    assert.deepEqual(s0.after, {
      id: snapshotIds[0],
      content_id: CONTENT_ID,
      user_id: pseudonym(config.piiKeys[0]!, USER_ID), // PII_FIELDS' default (docs/security.md)
      event_type: 'play',
      event_ts: '2025-08-01T10:00:00.123456Z',
      duration_ms: 1500,
      device: 'ios',
      raw_payload: '{"a": 1, "nested": {"b": [1, 2]}}',
    });
    assert.equal(s0.before, null);
    const s1 = valueOf(withKey(snap, snapshotIds[1] ?? '')[0]);
    assert.equal(s1.after?.event_ts, '2025-08-01T10:00:00Z');
    assert.equal(s1.after?.content_id, null);
    assert.equal(s1.after?.raw_payload, null);

    // Insert: rendering and source block.
    const [ca, ua] = withKey(events(recs), a);
    const c = valueOf(ca);
    assert.equal(c.op, 'c');
    assert.equal(c.before, null);
    assert.deepEqual(c.after, {
      id: a,
      content_id: CONTENT_ID,
      user_id: pseudonym(config.piiKeys[0]!, USER_ID), // PII_FIELDS' default (docs/security.md)
      event_type: 'finish',
      event_ts: '2025-08-02T08:30:00.5Z',
      duration_ms: 42,
      device: 'web',
      raw_payload: '{"x": "y"}',
    });
    assert.equal(c.source.connector, 'postgresql');
    assert.equal(c.source.name, config.CDC_SERVER_NAME);
    assert.equal(c.source.db, new URL(config.databaseUrl).pathname.slice(1));
    assert.equal(c.source.schema, 'public');
    assert.equal(c.source.table, 'engagement_events');
    assert.equal(c.source.snapshot, 'false');
    assert.equal(typeof c.source.txId, 'number');
    assert.equal(typeof c.source.lsn, 'number');
    assert.ok(c.source.ts_ms > Date.now() - 120_000 && c.source.ts_ms <= c.ts_ms);
    // Update after insert of the same key, in commit order; REPLICA IDENTITY DEFAULT: before null.
    const u = valueOf(ua);
    assert.equal(u.op, 'u');
    assert.equal(u.before, null);
    assert.equal(u.after?.duration_ms, 43);
    assert.ok(BigInt(ua?.offset ?? '0') > BigInt(ca?.offset ?? '0'));
    assert.ok(u.source.lsn !== null && c.source.lsn !== null && u.source.lsn > c.source.lsn);
    // Delete: before with the key only, then a tombstone with the same key.
    const [cb, db_, tomb] = withKey(events(recs), b);
    assert.equal(valueOf(cb).op, 'c');
    const d = valueOf(db_);
    assert.equal(d.op, 'd');
    assert.equal(d.after, null);
    assert.equal(d.before?.id, b);
    assert.equal(d.before?.device, null);
    assert.equal(tomb?.value, null);
    assert.equal(tomb?.partition, db_?.partition);
    // Content update: keyed by the UUID, on the content topic.
    const cu = recs.find((r) => r.topic === config.KAFKA_TOPIC_CONTENT && r.value?.op === 'u');
    assert.equal(cu?.key, JSON.stringify({ id: CONTENT_ID }));
    assert.equal(valueOf(cu).after?.length_seconds, 700);

    // TOAST: a large, incompressible raw_payload stored out of line; an update not touching it.
    const big = JSON.stringify({
      blob: Array.from({ length: 800 }, (_, i) => ((i * 7919) % 104729).toString(36)).join(''),
    });
    const t =
      (
        await db.query<{ id: string }>(
          `INSERT INTO engagement_events (event_ts, raw_payload) VALUES (now(), $1) RETURNING id::text`,
          [big],
        )
      ).rows[0]?.id ?? '';
    await db.query('UPDATE engagement_events SET duration_ms = 1 WHERE id = $1', [t]);
    await db.query('ALTER TABLE engagement_events REPLICA IDENTITY FULL');
    await db.query('UPDATE engagement_events SET duration_ms = 2 WHERE id = $1', [t]);
    // Schema drift: a column added while the CDC runs.
    await db.query('ALTER TABLE engagement_events ADD COLUMN region TEXT');
    const r =
      (
        await db.query<{ id: string }>(
          `INSERT INTO engagement_events (event_ts, region) VALUES (now(), 'eu-west') RETURNING id::text`,
        )
      ).rows[0]?.id ?? '';
    recs = await readTopics(
      config,
      [config.KAFKA_TOPIC_ENGAGEMENT_EVENTS],
      (rs) => withKey(rs, t).length >= 3 && withKey(rs, r).length >= 1,
    );
    const [tc, tu1, tu2] = withKey(recs, t).map(valueOf);
    assert.equal(typeof tc?.after?.raw_payload, 'string');
    assert.equal(JSON.parse(String(tc?.after?.raw_payload)).blob.length, JSON.parse(big).blob.length);
    assert.equal(
      tu1?.after?.raw_payload,
      '__debezium_unavailable_value',
      'unchanged TOAST under REPLICA IDENTITY DEFAULT',
    );
    assert.equal(tu1?.after?.duration_ms, 1);
    assert.equal(tu2?.after?.raw_payload, tc?.after?.raw_payload, 'unchanged TOAST filled from the FULL before image');
    assert.equal(tu2?.before?.duration_ms, 1, 'REPLICA IDENTITY FULL gives the before image');
    const drift = valueOf(withKey(recs, r)[0]);
    assert.equal(drift.after?.region, 'eu-west');
    assert.ok(!('region' in (tc?.after ?? {})), 'earlier events keep their columns');

    // A dropped replication connection: the CDC reconnects and loses nothing, duplicates nothing.
    const sessionsBefore = cdc.status().sessions;
    const killed = await db.query(
      `SELECT pg_terminate_backend(active_pid) AS ok FROM pg_replication_slots WHERE slot_name = $1 AND active`,
      [config.CDC_SLOT_NAME],
    );
    assert.equal(killed.rowCount, 1);
    const more = (
      await db.query<{ id: string }>(
        `INSERT INTO engagement_events (event_ts) SELECT now() FROM generate_series(1, 50) RETURNING id::text`,
      )
    ).rows.map((x) => x.id);
    recs = await readTopics(config, [config.KAFKA_TOPIC_ENGAGEMENT_EVENTS], (rs) =>
      more.every((id) => withKey(rs, id).length >= 1),
    );
    await waitFor(
      'a new session',
      () => cdc!.status().sessions > sessionsBefore && cdc!.status().phase === 'streaming',
    );
    for (const id of more) assert.equal(withKey(recs, id).length, 1, `row ${id} exactly once`);
    const keys = events(recs)
      .filter((x) => x.value !== null)
      .map((x) => `${x.key}|${x.value?.op}|${x.value?.after?.duration_ms ?? ''}`);
    assert.equal(new Set(keys).size, keys.length, 'no change event twice');
  },
);
