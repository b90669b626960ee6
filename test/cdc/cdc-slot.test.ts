import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { startCdc, type CdcComponent } from '../../src/cdc/cdc.js';
import { parseLsn } from '../../src/cdc/lsn.js';
import { readLastPosition } from '../../src/cdc/position-store.js';
import { PipelineError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { registry } from '../../src/core/metrics.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { spawnCdc } from './child.js';
import { pgClient, readToEnd, readTopics } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The slot's life: on a quiet database heartbeats still move confirmed_flush_lsn past WAL written
 * elsewhere; a second `engage cdc` on the same slot fails with SLOT_IN_USE and leaves the first one
 * streaming; a slot dropped behind the CDC's back is refused, not silently re-snapshotted.
 */

let env: TestEnv;
let db: pg.Client;
let cdc: CdcComponent | undefined;
const log = createLogger('warn', 'cdc-slot-test');

before(async () => {
  env = await createTestEnv({ CDC_HEARTBEAT_SECONDS: '0.5', CDC_SNAPSHOT_MODE: 'never' });
  db = await pgClient(env.config);
  await db.query('CREATE TABLE noise (id serial PRIMARY KEY, pad text)');
});

after(async () => {
  await cdc?.stop();
  await db?.end();
  await env?.cleanup();
});

async function confirmedFlush(): Promise<bigint> {
  const r = await db.query<{ l: string }>(
    'SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1',
    [env.config.CDC_SLOT_NAME],
  );
  return parseLsn(r.rows[0]?.l ?? '0/0');
}

test('quiet database: heartbeats advance the slot past WAL it does not publish', { timeout: 60_000 }, async () => {
  cdc = await startCdc(env.config, log);
  const start = await confirmedFlush();
  // 2 MB of WAL in a table outside the publication: nothing for the CDC to write.
  await db.query(`INSERT INTO noise (pad) SELECT repeat(md5(i::text), 32) FROM generate_series(1, 2000) i`);
  const walAfterNoise = parseLsn(
    (await db.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l ?? '0/0',
  );
  assert.ok(walAfterNoise > start);
  const reached = await waitFor(
    'confirmed_flush_lsn past the noise',
    async () => {
      const f = await confirmedFlush();
      return f >= walAfterNoise ? f : undefined;
    },
    { timeoutMs: 30_000, everyMs: 200 },
  );
  assert.ok(reached > start);
  const status = cdc.status();
  assert.equal(status.phase, 'streaming');
  await waitFor('WAL statistics', () => cdc?.status().retained_wal_bytes !== null);
  assert.equal(typeof cdc.status().retained_wal_bytes, 'number');
  const metrics = await registry.metrics();
  assert.match(metrics, new RegExp(`engage_cdc_slot_retained_wal_bytes\\{[^}]*slot="${env.config.CDC_SLOT_NAME}"`));
  assert.match(metrics, new RegExp(`engage_cdc_replication_lag_ms\\{[^}]*slot="${env.config.CDC_SLOT_NAME}"`));
  // The heartbeats' transactions are committed to Kafka too: each one is a freshness observation.
  const observed = new RegExp(
    `engage_cdc_freshness_seconds_count\\{[^}]*slot="${env.config.CDC_SLOT_NAME}"[^}]*\\} (\\d+)`,
  ).exec(metrics);
  assert.ok(Number(observed?.[1] ?? 0) > 0, 'the CDC observed its freshness per source transaction');
  // The heartbeats are transactions too: their position is committed, no change event is.
  const position = await readLastPosition(
    env.config,
    'test',
    env.config.KAFKA_TOPIC_CDC_POSITION,
    env.config.CDC_SLOT_NAME,
  );
  assert.ok(position && parseLsn(position.lsn) > start);
});

test(
  'a second engage cdc on the same slot fails with SLOT_IN_USE; the first keeps streaming',
  { timeout: 60_000 },
  async () => {
    assert.ok(cdc, 'the first CDC runs');
    const second = spawnCdc({ ...env.env, CDC_SLOT_WAIT_SECONDS: '1' });
    const exit = await second.exited;
    assert.equal(exit.code, 1, second.output());
    assert.match(
      second.output(),
      /SLOT_IN_USE: replication slot "slot_[a-z0-9]+" is in use by another engage cdc \(PostgreSQL backend pid \d+ holds its lock\)/,
    );
    // In-process too: startCdc rejects with the coded error.
    await assert.rejects(
      startCdc({ ...env.config, CDC_SLOT_WAIT_SECONDS: 0 }, log),
      (err: unknown) => err instanceof PipelineError && err.code === 'SLOT_IN_USE' && !err.retriable,
    );
    const id = (
      await db.query<{ id: string }>(`INSERT INTO engagement_events (event_ts) VALUES (now()) RETURNING id::text`)
    ).rows[0]?.id;
    const key = JSON.stringify({ id });
    await readTopics(env.config, [env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS], (rs) => rs.some((r) => r.key === key));
    await cdc.stop();
    cdc = undefined;
    const all = await readToEnd(
      env.config,
      env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS,
      env.config.KAFKA_TOPIC_PARTITIONS,
    );
    assert.deepEqual(
      all.map((r) => r.key),
      [key],
      'the row once, nothing else',
    );
  },
);

test('a slot dropped while Kafka holds its position is refused with a clear message', { timeout: 60_000 }, async () => {
  assert.equal(cdc, undefined);
  await waitFor(
    'slot released',
    async () =>
      (
        await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [
          env.config.CDC_SLOT_NAME,
        ])
      ).rowCount === 1,
  );
  await db.query('SELECT pg_drop_replication_slot($1)', [env.config.CDC_SLOT_NAME]);
  await assert.rejects(
    startCdc(env.config, log),
    (err: unknown) =>
      err instanceof PipelineError &&
      err.code === 'SERVICE_MISCONFIGURED' &&
      /is gone but Kafka holds a position/.test(err.message),
  );
});
