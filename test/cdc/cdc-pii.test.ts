import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { startCdc, type CdcComponent } from '../../src/cdc/cdc.js';
import { sendSnapshotSignal } from '../../src/cdc/incremental-snapshot/signal.js';
import { PipelineError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { isPseudonym, pseudonym } from '../../src/core/pseudonym.js';
import { createConsumer, createKafka } from '../../src/kafka/client.js';
import type { Config } from '../../src/config/load.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';
import { pgClient } from './helpers.js';

/**
 * PII_FIELDS on the real stack (docs/security.md): `engagement_events.user_id` never leaves the CDC
 * raw — not in the initial snapshot, the stream's inserts, updates (before images, REPLICA IDENTITY
 * FULL) and deletes, nor the incremental snapshot — scanned in the raw bytes of every record of
 * every topic the CDC writes; each user's pseudonym is the same in all of them.
 */

const USERS = Array.from({ length: 5 }, () => randomUUID());
const CONTENT_ID = randomUUID();
let env: TestEnv;
let db: pg.Client;
let cdc: CdcComponent | undefined;

before(async () => {
  env = await createTestEnv({ CDC_HEARTBEAT_SECONDS: '1', CDC_COMMIT_INTERVAL_MS: '20' });
  db = await pgClient(env.config);
  await db.query('ALTER TABLE engagement_events REPLICA IDENTITY FULL');
  await db.query(
    `INSERT INTO content (id, slug, title, content_type, length_seconds, publish_ts) VALUES ($1, 'pii', 'PII', 'video', 600, now())`,
    [CONTENT_ID],
  );
  await insertEvents('snapshot');
});

after(async () => {
  await cdc?.stop();
  await db?.end();
  await env?.cleanup();
});

async function insertEvents(device: string): Promise<void> {
  for (const user of USERS) {
    await db.query(
      `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload)
       VALUES ($1, $2, 'play', now(), 1000, $3, '{}')`,
      [CONTENT_ID, user, device],
    );
  }
}

interface RawRecord {
  topic: string;
  text: string;
}

/** Every committed record of `topics` as text (key + value bytes), until `done` says so. */
async function rawRecords(config: Config, topics: string[], done: (rs: RawRecord[]) => boolean): Promise<RawRecord[]> {
  const consumer = createConsumer(createKafka(config, `${config.KAFKA_CLIENT_ID}-pii-reader`), {
    groupId: `pii-reader-${randomBytes(4).toString('hex')}`,
    fromBeginning: true,
    readCommitted: true,
  });
  const records: RawRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages)
          records.push({
            topic: batch.topic,
            text: `${m.key?.toString('latin1') ?? ''}\n${m.value?.toString('latin1') ?? ''}`,
          });
      },
    });
    await waitFor('the records', () => done(records), 60_000);
    return records;
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

function assertNoRawUser(records: RawRecord[]): void {
  for (const r of records) {
    for (const u of USERS) {
      assert.ok(!r.text.includes(u), `${r.topic} holds the raw user id ${u}: ${r.text.slice(0, 300)}`);
      assert.ok(!r.text.includes(u.replaceAll('-', '')), `${r.topic} holds the raw user id ${u} (32 hex)`);
    }
  }
}

test(
  'a tagged column never leaves the CDC raw; its pseudonym is stable across events',
  { timeout: 120_000 },
  async () => {
    const config = env.config;
    const key = config.piiKeys[0];
    assert.ok(key, 'the test env passes a key');
    assert.deepEqual(config.piiFields, [{ table: 'engagement_events', column: 'user_id' }], 'protection on by default');
    cdc = await startCdc(config, createLogger('warn', 'cdc-pii-test'));
    await insertEvents('stream');
    await db.query(`UPDATE engagement_events SET duration_ms = 2000 WHERE device = 'stream'`);
    await db.query(`DELETE FROM engagement_events WHERE device = 'stream' AND user_id = $1`, [USERS[0]]);
    const { id } = await sendSnapshotSignal(config, ['engagement_events'], null);

    const topics = [config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, config.KAFKA_TOPIC_CONTENT, config.KAFKA_TOPIC_CDC_POSITION];
    const values = (rs: RawRecord[]) =>
      rs
        .filter((r) => r.topic === config.KAFKA_TOPIC_ENGAGEMENT_EVENTS)
        .map((r) => r.text.slice(r.text.indexOf('\n') + 1))
        .filter((v) => v !== '')
        .map(
          (v) =>
            JSON.parse(v) as {
              op: string;
              before: Record<string, unknown> | null;
              after: Record<string, unknown> | null;
              source: { snapshot: string };
            },
        );
    // 5 snapshot rows, 5 inserts, 5 updates, 1 delete, then the 9 rows again from the incremental snapshot.
    const records = await rawRecords(config, topics, (rs) => {
      const vs = values(rs);
      return (
        vs.filter((v) => v.source.snapshot === 'incremental').length >= 9 && vs.filter((v) => v.op === 'd').length >= 1
      );
    });
    assert.ok(id);
    assertNoRawUser(records);

    const expected = new Map(USERS.map((u) => [pseudonym(key, u), u]));
    const seen = new Map<string, number>();
    const byOp: Record<string, number> = {};
    for (const v of values(records)) {
      const kind = `${v.op}/${v.source.snapshot}`;
      byOp[kind] = (byOp[kind] ?? 0) + 1;
      for (const image of [v.before, v.after]) {
        if (!image) continue;
        const p = image.user_id as string;
        assert.ok(isPseudonym(p), `${kind}: ${p} is a pseudonym`);
        assert.ok(expected.has(p), `${kind}: ${p} is the pseudonym of a known user under key ${key.id}`);
        seen.set(p, (seen.get(p) ?? 0) + 1);
      }
    }
    assert.equal((byOp['r/true'] ?? 0) + (byOp['r/last'] ?? 0), 5, JSON.stringify(byOp));
    assert.equal(byOp['c/false'], 5, JSON.stringify(byOp));
    assert.equal(byOp['u/false'], 5, JSON.stringify(byOp));
    assert.equal(byOp['d/false'], 1, JSON.stringify(byOp));
    assert.ok((byOp['r/incremental'] ?? 0) >= 9, JSON.stringify(byOp));
    // Each user's one pseudonym, in every path: snapshot, insert, update before/after, delete, incremental.
    assert.equal(seen.size, USERS.length);
    for (const [p, n] of seen) assert.ok(n >= 6, `${expected.get(p)}'s pseudonym seen ${n} times`);
  },
);

test('PII_FIELDS without a key: the CDC refuses to start, saying what to set', async () => {
  await assert.rejects(
    startCdc({ ...env.config, piiKeys: [] }, createLogger('silent', 'cdc-pii-test')),
    (err: unknown) =>
      err instanceof PipelineError &&
      err.code === 'CONFIG_INVALID' &&
      /PII_KEYS=/.test(err.message) &&
      /PII_FIELDS=none/.test(err.message),
  );
});
