import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import type pg from 'pg';
import { parseLsn } from '../../src/cdc/lsn.js';
import { createKafka } from '../../src/kafka/client.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { killHard, spawnCdc, type CdcChild } from './child.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { pgClient, readToEnd } from './helpers.js';

/**
 * Exactly-once under SIGKILL. 10,000 rows exist before the first start (the snapshot); a writer
 * then commits 100,000 more rows in 1,000 transactions, and every fifth transaction also bumps
 * `duration_ms` (a per-row version: 0 at insert, +1 per update) of 20 earlier rows. Meanwhile
 * `engage cdc` runs as a child process and is SIGKILLed five times — the first time 150 ms after it
 * created the slot, i.e. during its snapshot — and restarted each time. Read with read_committed
 * afterwards, the events topic must hold every row's creation exactly once (`r` for the rows of the
 * snapshot that finally committed — a redone snapshot is taken later, so it holds more rows — and
 * `c` for the rest) and, per key, every later version exactly once and in commit order.
 */

const PRE_ROWS = 10_000;
const TXNS = 1_000;
const ROWS_PER_TXN = 100;
const UPDATE_EVERY = 5;
const UPDATES_PER_TXN = 20;
/** The writer's transactions come in one phase per CDC run (5 killed + the final one), each phase
 *  starting once its run is up, so every kill lands while transactions are being committed. */
const PHASES = 6;

let env: TestEnv;
let db: pg.Client;
let current: CdcChild | undefined;

before(async () => {
  env = await createTestEnv({ CDC_HEARTBEAT_SECONDS: '1', CDC_SLOT_WAIT_SECONDS: '30', LOG_LEVEL: 'warn' });
  db = await pgClient(env.config);
  await db.query(
    `INSERT INTO engagement_events (event_ts, duration_ms, device) SELECT now(), 0, 'pre' FROM generate_series(1, ${PRE_ROWS})`,
  );
});

after(async () => {
  if (current) await killHard(current);
  await db?.end();
  await env?.cleanup();
});

/** True once the CDC streams: its replication connection (not the slot-creating one) holds the slot. */
async function streaming(): Promise<boolean> {
  const r = await db.query(
    `SELECT 1 FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
      WHERE s.slot_name = $1 AND r.application_name LIKE 'engage-cdc-stream:%'`,
    [env.config.CDC_SLOT_NAME],
  );
  return r.rowCount === 1;
}

/**
 * Whether the killed first run committed a position (its snapshot), without waiting: the position
 * topic's last stable offset is above 0 only past a committed transaction. (readLastPosition would
 * wait for a transaction the kill left open, which only the next run's producer fences.)
 */
async function snapshotCommitted(): Promise<boolean> {
  const admin = createKafka(env.config, 'test-position-lso').admin();
  await admin.connect();
  try {
    const stable = await admin.fetchTopicOffsets(env.config.KAFKA_TOPIC_CDC_POSITION, {
      isolationLevel: KafkaJS.IsolationLevel.READ_COMMITTED,
    });
    return stable.some((p) => Number(p.high) > 0);
  } catch {
    return false; // the topic is not there yet: nothing was committed
  } finally {
    await admin.disconnect();
  }
}

interface WriterState {
  done: boolean;
  maxId: number;
  updates: number;
  /** Phases the writer may start: one per CDC run, released when that run is up. */
  released: number;
}

async function writer(state: WriterState): Promise<void> {
  const w = await pgClient(env.config);
  const phase = Math.ceil(TXNS / PHASES);
  try {
    for (let t = 0; t < TXNS; t++) {
      if (t % phase === 0)
        await waitFor(`phase ${t / phase} released`, () => state.released > t / phase, {
          timeoutMs: 120_000,
          everyMs: 10,
        });
      await w.query('BEGIN');
      const r = await w.query<{ max: string }>(
        `WITH ins AS (INSERT INTO engagement_events (event_ts, duration_ms, device) SELECT now(), 0, 'w' FROM generate_series(1, ${ROWS_PER_TXN}) RETURNING id)
         SELECT max(id)::text AS max FROM ins`,
      );
      state.maxId = Number(r.rows[0]?.max);
      if (t % UPDATE_EVERY === 0) {
        const ids = new Set<number>();
        while (ids.size < UPDATES_PER_TXN) ids.add(1 + Math.floor(Math.random() * state.maxId));
        const u = await w.query(
          'UPDATE engagement_events SET duration_ms = duration_ms + 1 WHERE id = ANY($1::bigint[])',
          [[...ids]],
        );
        state.updates += u.rowCount ?? 0;
      }
      await w.query('COMMIT');
      await sleep(12); // the writer's pacing: commits keep arriving through every kill
    }
  } finally {
    state.done = true;
    await w.end();
  }
}

test(
  'SIGKILL at several moments: every row exactly once, per-key commit order kept',
  { timeout: 240_000 },
  async (t) => {
    const t0 = Date.now();
    const lap = (what: string) => t.diagnostic(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const state: WriterState = { done: false, maxId: 0, updates: 0, released: 0 };
    const kills: string[] = [];
    // 1st run: killed shortly after the slot appears (the snapshot is being written or just committed).
    current = spawnCdc(env.env);
    await waitFor(
      'slot created',
      async () =>
        (await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [env.config.CDC_SLOT_NAME]))
          .rowCount === 1,
      { timeoutMs: 60_000, everyMs: 20 },
    );
    const writing = writer(state);
    state.released = 1;
    await sleep(150); // the moment of the kill is what this run exercises
    await killHard(current);
    kills.push(`150 ms after the slot appeared (snapshot committed: ${await snapshotCommitted()})`);
    // Streaming runs: killed after a varying time while the writer commits.
    for (const delay of [1500, 700, 2500, 1100]) {
      current = spawnCdc(env.env);
      const c = current;
      await waitFor(
        'cdc streaming',
        async () => (c.child.exitCode !== null ? `exited: ${c.output()}` : (await streaming()) || undefined),
        { timeoutMs: 60_000, everyMs: 50 },
      ).then((v) => {
        if (typeof v === 'string') throw new Error(`engage cdc exited early:\n${v}`);
      });
      state.released++;
      await sleep(delay); // the moment of the kill is what this run exercises
      await killHard(current);
      kills.push(`streaming +${delay} ms (rows written so far: ${state.maxId})`);
    }
    lap('kills done');
    // Final run: let it catch up with everything the writer committed, then stop it gracefully.
    current = spawnCdc(env.env);
    const c = current;
    await waitFor(
      'final cdc streaming',
      async () => {
        if (c.child.exitCode !== null) throw new Error(`engage cdc exited:\n${c.output()}`);
        return streaming();
      },
      { timeoutMs: 120_000, everyMs: 100 },
    );
    state.released = PHASES;
    await writing;
    const target = parseLsn(
      (await db.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l ?? '0/0',
    );
    await waitFor(
      'CDC caught up (confirmed_flush_lsn past the last write)',
      async () => {
        if (c.child.exitCode !== null) throw new Error(`engage cdc exited:\n${c.output()}`);
        const r = await db.query<{ l: string | null }>(
          'SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1',
          [env.config.CDC_SLOT_NAME],
        );
        const l = r.rows[0]?.l;
        return l !== null && l !== undefined && parseLsn(l) >= target;
      },
      { timeoutMs: 120_000, everyMs: 200 },
    );
    lap('caught up');
    current.child.kill('SIGTERM');
    const exit = await current.exited;
    assert.equal(exit.code, 0, `graceful stop:\n${current.output().slice(-3000)}`);
    current = undefined;

    const expected = new Map<string, number>();
    for (const r of (
      await db.query<{ id: string; v: number }>('SELECT id::text AS id, duration_ms AS v FROM engagement_events')
    ).rows)
      expected.set(r.id, r.v);
    assert.equal(expected.size, PRE_ROWS + TXNS * ROWS_PER_TXN);

    const recs = await readToEnd(
      env.config,
      env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS,
      env.config.KAFKA_TOPIC_PARTITIONS,
      120_000,
    );
    lap(`topic read (${recs.length} records)`);
    const versions = new Map<string, number[]>();
    let creates = 0;
    let snapshotReads = 0;
    for (const r of recs) {
      assert.ok(r.value, 'no tombstones expected (no deletes)');
      const id = String(r.value.after?.id);
      assert.equal(r.key, JSON.stringify({ id }));
      if (r.value.op === 'r') snapshotReads++;
      if (r.value.op === 'c') {
        creates++;
        assert.equal(r.value.after?.duration_ms, 0, 'a streamed create carries version 0');
      }
      if (r.value.op === 'c' || r.value.op === 'r')
        assert.ok(!versions.has(id), `row ${id} created twice (${r.value.op})`);
      else {
        assert.equal(r.value.op, 'u');
        assert.ok(versions.has(id), `update of ${id} before its creation`);
      }
      const list = versions.get(id) ?? [];
      list.push(Number(r.value.after?.duration_ms));
      versions.set(id, list);
    }
    t.diagnostic(
      `kills: ${kills.join('; ')}; snapshot rows ${snapshotReads}, streamed creates ${creates}, updates ${state.updates}`,
    );
    // A redone snapshot is taken later, so it holds more rows; each row is still created once.
    assert.ok(snapshotReads >= PRE_ROWS);
    assert.equal(snapshotReads + creates, expected.size);
    assert.equal(versions.size, expected.size);
    for (const [id, final] of expected) {
      const seen = versions.get(id) ?? [];
      const first = seen[0] ?? -1;
      assert.deepEqual(
        seen,
        Array.from({ length: final - first + 1 }, (_, i) => first + i),
        `row ${id}: every version once, in commit order`,
      );
    }
    // Updates committed before the (last) snapshot are folded into its rows; the later ones all streamed.
    assert.ok(recs.length - expected.size > 0 && recs.length - expected.size <= state.updates);
  },
);
