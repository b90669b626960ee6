import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { startCdc, type CdcComponent } from '../../src/cdc/cdc.js';
import { maxEventBytes, TRUNCATED_VALUE, type TruncatedInfo } from '../../src/cdc/oversize.js';
import { createLogger } from '../../src/core/logger.js';
import type { ChangeEvent } from '../../src/core/types.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { pgClient, readTopics, type Record as KRecord } from './helpers.js';

/**
 * A row whose change event exceeds KAFKA_MESSAGE_MAX_BYTES (a 2 MB raw_payload) does not stop the
 * CDC: it is written with the value replaced by the marker and a `truncated` block whose reference
 * finds the row in PostgreSQL; the rows after it arrive; one just under the limit arrives whole;
 * the session never fails (one session, no reconnect). Both paths: the snapshot and the stream.
 */

let env: TestEnv;
let db: pg.Client;
let cdc: CdcComponent | undefined;
const CONTENT_ID = '0b8f6c2e-3d4a-4f5b-9c1d-2e3f4a5b6c7d';
const TWO_MB = 2 * 1024 * 1024;

before(async () => {
  env = await createTestEnv({ CDC_HEARTBEAT_SECONDS: '1', CDC_SNAPSHOT_MODE: 'initial' });
  db = await pgClient(env.config);
  await db.query(
    `INSERT INTO content (id, slug, title, content_type, length_seconds, publish_ts) VALUES ($1, 'big', 'Big', 'video', 600, '2025-08-01T00:00:00Z')`,
    [CONTENT_ID],
  );
});

after(async () => {
  await cdc?.stop();
  await db?.end();
  await env?.cleanup();
});

async function insert(payloadChars: number): Promise<string> {
  const r = await db.query<{ id: string }>(
    `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload)
     VALUES ($1, NULL, 'play', now(), 1000, 'web', jsonb_build_object('blob', repeat('x', $2::int))) RETURNING id::text`,
    [CONTENT_ID, payloadChars],
  );
  const id = r.rows[0]?.id;
  assert.ok(id);
  return id;
}

type Event = ChangeEvent & { truncated?: TruncatedInfo };

/** The events of `ids` (read_committed), once every one is there. */
async function readEvents(ids: string[]): Promise<Map<string, KRecord>> {
  const keys = new Set(ids.map((id) => JSON.stringify({ id })));
  const recs = await readTopics(
    env.config,
    [env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS],
    (rs) => new Set(rs.filter((r) => r.key !== null && keys.has(r.key)).map((r) => r.key)).size === keys.size,
    60_000,
  );
  return new Map(recs.filter((r) => r.key !== null && keys.has(r.key)).map((r) => [r.key ?? '', r]));
}

function checkTruncated(raw: KRecord | undefined, id: string, op: string): void {
  const limit = maxEventBytes(env.config.KAFKA_MESSAGE_MAX_BYTES);
  const value = raw?.value as Event | null | undefined;
  assert.ok(raw && value, `event ${id} arrived`);
  assert.equal(value.op, op);
  assert.ok(raw.bytes <= limit, `the written record fits (${raw.bytes} <= ${limit})`);
  assert.equal(value.after?.raw_payload, TRUNCATED_VALUE, 'the oversized value is replaced by the marker');
  assert.equal(value.after?.id, id, 'the other columns are kept');
  assert.equal(value.after?.device, 'web');
  const t = value.truncated;
  assert.ok(t, 'a truncated block');
  assert.deepEqual(t.fields, ['after.raw_payload']);
  assert.ok(t.original_bytes > TWO_MB, `original size recorded (${t.original_bytes})`);
  assert.equal(t.limit_bytes, limit);
  assert.deepEqual(t.ref.key, { id });
  assert.equal(t.ref.schema, 'public');
  assert.equal(t.ref.table, 'engagement_events');
  assert.equal(typeof t.ref.lsn, 'number');
}

test(
  'an oversized row is written marked, with its reference; the CDC keeps streaming',
  { timeout: 180_000 },
  async () => {
    const snapshotBig = await insert(TWO_MB);
    cdc = await startCdc(env.config, createLogger('error', 'cdc-oversize-test'));
    const before = await insert(10);
    const big = await insert(TWO_MB);
    const afterBig = await insert(10);
    // Just under the event budget: written whole (producer, topic and consumer limits agree).
    const nearLimit = await insert(maxEventBytes(env.config.KAFKA_MESSAGE_MAX_BYTES) - 2000);
    // A big and a normal row in one transaction.
    await db.query('BEGIN');
    const bigInTxn = await insert(TWO_MB + 1);
    const normalInTxn = await insert(10);
    await db.query('COMMIT');

    const events = await readEvents([snapshotBig, before, big, afterBig, nearLimit, bigInTxn, normalInTxn]);
    const get = (id: string) => events.get(JSON.stringify({ id }));
    checkTruncated(get(snapshotBig), snapshotBig, 'r');
    checkTruncated(get(big), big, 'c');
    checkTruncated(get(bigInTxn), bigInTxn, 'c');
    for (const id of [before, afterBig, normalInTxn]) {
      const e = get(id)?.value as Event | null | undefined;
      assert.equal(e?.truncated, undefined, `row ${id} is not marked`);
      assert.equal(e?.after?.raw_payload, '{"blob": "xxxxxxxxxx"}');
    }
    const near = get(nearLimit);
    assert.equal((near?.value as Event | null | undefined)?.truncated, undefined, 'a row under the limit is whole');
    assert.ok((near?.bytes ?? 0) > 900_000, `and large (${near?.bytes} bytes)`);

    // The reference finds the original row.
    const ref = (get(big)?.value as Event | null | undefined)?.truncated?.ref;
    const original = await db.query<{ n: number }>(
      `SELECT length(raw_payload->>'blob') AS n FROM ${String(ref?.schema)}.${String(ref?.table)} WHERE id = $1`,
      [(ref?.key as { id: string }).id],
    );
    assert.equal(original.rows[0]?.n, TWO_MB);

    const status = cdc.status();
    assert.equal(status.phase, 'streaming');
    assert.equal(status.sessions, 1, 'no session failed');
    assert.equal(status.truncated_events, 3);
  },
);

test(
  'with KAFKA_MESSAGE_MAX_BYTES raised, the same row goes whole: producer, topic and consumer limits follow the setting',
  { timeout: 120_000 },
  async () => {
    const big = await createTestEnv({
      CDC_HEARTBEAT_SECONDS: '1',
      CDC_SNAPSHOT_MODE: 'never',
      KAFKA_MESSAGE_MAX_BYTES: String(3_000_000),
    });
    const bigDb = await pgClient(big.config);
    let bigCdc: CdcComponent | undefined;
    try {
      bigCdc = await startCdc(big.config, createLogger('error', 'cdc-oversize-test'));
      const r = await bigDb.query<{ id: string }>(
        // Hex digits: lz4 barely shrinks them, so the record batch the broker checks stays above 2 MB.
        `INSERT INTO engagement_events (event_ts, raw_payload)
       SELECT now(), jsonb_build_object('blob', string_agg(md5(i::text), '')) FROM generate_series(1, $1::int / 32) i RETURNING id::text`,
        [TWO_MB],
      );
      const key = JSON.stringify({ id: r.rows[0]?.id });
      // Above the broker's default max.message.bytes (1,048,588): only the topic's own setting admits it.
      const recs = await readTopics(
        big.config,
        [big.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS],
        (rs) => rs.some((x) => x.key === key),
        60_000,
      );
      const rec = recs.find((x) => x.key === key);
      assert.ok(rec && rec.bytes > TWO_MB, `the whole event (${rec?.bytes} bytes)`);
      assert.equal((rec.value as Event | null)?.truncated, undefined);
      assert.equal(bigCdc.status().sessions, 1);
    } finally {
      await bigCdc?.stop();
      await bigDb.end();
      await big.cleanup();
    }
  },
);
