import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { startCdc, type CdcComponent } from '../../src/cdc/cdc.js';
import { positionRecord, readLastPosition, snapshotPendingPosition } from '../../src/cdc/position-store.js';
import type { Config } from '../../src/config/load.js';
import { PipelineError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { createTopics, deletePipelineTopics } from '../../src/kafka/admin.js';
import { createKafka, idempotentProducer } from '../../src/kafka/client.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { spawnCdc } from './child.js';
import { pgClient, readTopics } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The CDC never drops its slot on its own. With the slot present but no position in Kafka (the
 * position topic renamed or on another cluster) it refuses to start, non-retriably, saying what to
 * do, and leaves the slot alone; `--reset-position` starts over with a new snapshot. The one case
 * it drops the slot by itself is its own interrupted snapshot, recorded by a `snapshot-pending`
 * record before the slot was created.
 */

let env: TestEnv;
let db: pg.Client;
let cdc: CdcComponent | undefined;
/** Configurations whose position topic is not the test environment's (deleted at the end). */
const others: Config[] = [];
const log = createLogger('error', 'cdc-position-reset-test');

before(async () => {
  env = await createTestEnv({ CDC_HEARTBEAT_SECONDS: '1', CDC_SNAPSHOT_MODE: 'initial' });
  db = await pgClient(env.config);
});

after(async () => {
  await cdc?.stop();
  for (const c of others)
    await deletePipelineTopics({ ...env.config, KAFKA_TOPIC_CDC_POSITION: c.KAFKA_TOPIC_CDC_POSITION }).catch(
      () => undefined,
    );
  await db?.end();
  await env?.cleanup();
});

async function slotExists(): Promise<boolean> {
  return (
    (await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [env.config.CDC_SLOT_NAME])).rowCount ===
    1
  );
}

async function insertEvent(): Promise<string> {
  const r = await db.query<{ id: string }>(
    `INSERT INTO engagement_events (event_ts) VALUES (now()) RETURNING id::text`,
  );
  return JSON.stringify({ id: r.rows[0]?.id });
}

/** Snapshot records (op r) of `key` in `topic`, once `expected` of them are there. */
async function snapshotReads(config: Config, key: string, expected: number): Promise<number> {
  const recs = await readTopics(
    config,
    [config.KAFKA_TOPIC_ENGAGEMENT_EVENTS],
    (rs) => rs.filter((r) => r.key === key && r.value?.op === 'r').length >= expected,
  );
  return recs.filter((r) => r.key === key && r.value?.op === 'r').length;
}

test('a slot without a position is refused, kept, and reset only when asked', { timeout: 120_000 }, async () => {
  const first = await insertEvent();
  cdc = await startCdc(env.config, log);
  await snapshotReads(env.config, first, 1);
  await cdc.stop();
  cdc = undefined;
  assert.ok(await slotExists());

  // The position topic "renamed": the slot exists, Kafka holds no position for it.
  const moved: Config = { ...env.config, KAFKA_TOPIC_CDC_POSITION: `${env.config.KAFKA_TOPIC_CDC_POSITION}-moved` };
  others.push(moved);
  await assert.rejects(startCdc(moved, log), (err: unknown) => {
    assert.ok(err instanceof PipelineError);
    assert.equal(err.code, 'SERVICE_MISCONFIGURED');
    assert.equal(err.retriable, false, 'non-retriable: engage run does not restart it');
    assert.match(
      err.message,
      /CDC position missing: replication slot "slot_[a-z0-9]+" exists .* holds no position for it/,
    );
    assert.match(err.message, /engage cdc --reset-position/);
    return true;
  });
  assert.ok(await slotExists(), 'the slot is kept');

  // As a command: it exits with the error (no restart loop) and says what to do.
  const child = spawnCdc({ ...env.env, KAFKA_TOPIC_CDC_POSITION: moved.KAFKA_TOPIC_CDC_POSITION });
  const exit = await child.exited;
  assert.equal(exit.code, 78, `exit 78 (EX_CONFIG: engage run does not restart it)\n${child.output()}`);
  assert.match(child.output(), /SERVICE_MISCONFIGURED: CDC position missing/);
  assert.ok(await slotExists(), 'the slot is still kept');

  // --reset-position: a new slot and a new snapshot into the topics, then streaming.
  cdc = await startCdc(moved, log, { resetPosition: true });
  assert.equal(await snapshotReads(moved, first, 2), 2, 'the row was snapshotted again');
  const position = await readLastPosition(moved, 'test', moved.KAFKA_TOPIC_CDC_POSITION, moved.CDC_SLOT_NAME);
  assert.ok(position && position.phase !== 'snapshot-pending', 'a real position now');
  const later = await insertEvent();
  await readTopics(moved, [moved.KAFKA_TOPIC_ENGAGEMENT_EVENTS], (rs) =>
    rs.some((r) => r.key === later && r.value?.op === 'c'),
  );
  await cdc.stop();
  cdc = undefined;

  // Starting again without the flag: slot and position agree, it just streams.
  cdc = await startCdc(moved, log);
  await cdc.stop();
  cdc = undefined;
});

test(
  'its own interrupted snapshot (a snapshot-pending record) is redone without being asked',
  { timeout: 60_000 },
  async () => {
    await waitFor(
      'slot released',
      async () =>
        (
          await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [
            env.config.CDC_SLOT_NAME,
          ])
        ).rowCount === 1,
    );
    // A topic whose last record for the slot is the marker a CDC writes before creating its slot.
    const pendingTopic: Config = {
      ...env.config,
      KAFKA_TOPIC_CDC_POSITION: `${env.config.KAFKA_TOPIC_CDC_POSITION}-pending`,
    };
    others.push(pendingTopic);
    await createTopics(env.config, env.config.KAFKA_CLIENT_ID, [
      { topic: pendingTopic.KAFKA_TOPIC_CDC_POSITION, numPartitions: 1, compacted: true },
    ]);
    const marker = snapshotPendingPosition(env.config.CDC_SLOT_NAME, env.config.CDC_SERVER_NAME);
    const producer = idempotentProducer(createKafka(env.config, `${env.config.KAFKA_CLIENT_ID}-test-marker`));
    await producer.connect();
    try {
      const rec = positionRecord(pendingTopic.KAFKA_TOPIC_CDC_POSITION, marker);
      await producer.send({ topic: rec.topic, messages: [{ key: rec.key, value: rec.value }] });
    } finally {
      await producer.disconnect();
    }
    const key = await insertEvent();
    cdc = await startCdc(pendingTopic, log);
    assert.equal((await snapshotReads(pendingTopic, key, 1)) >= 1, true, 'the snapshot was taken again');
    const position = await readLastPosition(
      pendingTopic,
      'test',
      pendingTopic.KAFKA_TOPIC_CDC_POSITION,
      pendingTopic.CDC_SLOT_NAME,
    );
    assert.ok(
      position && position.phase !== 'snapshot-pending' && position.snapshot !== null,
      'a position carrying the new snapshot',
    );
  },
);
