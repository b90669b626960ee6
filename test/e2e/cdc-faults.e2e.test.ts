import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { parseLsn } from '../../src/cdc/lsn.js';
import { loadConfig, type Config } from '../../src/config/load.js';
import { stopPid } from '../../src/stack/process.js';
import { stopPrivatePostgres } from '../../src/stack/postgres.js';
import { stackRemove, stackUp } from '../../src/stack/stack.js';
import { readStackState } from '../../src/config/stack-state.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { killHard, spawnCdc, type CdcChild } from '../cdc/child.js';
import { readToEnd } from '../cdc/helpers.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * Kafka broker restart and PostgreSQL restart under a running `engage cdc`. These need services the
 * test may stop, so it brings up its OWN private stack (a temporary STACK_DIR, ports shifted by
 * STACK_PORT_OFFSET=1700) and never touches the shared one. Heavy (a second JVM): not in `npm test`;
 * run it alone: node --import tsx --test test/cdc/cdc-faults.e2e.test.ts
 *
 * A writer commits transactions of 100 rows (and bumps a per-row version now and then) throughout:
 * after 50 of them the broker is stopped (SIGTERM) for a few seconds and restarted; 50 transactions
 * later PostgreSQL is restarted (pg_ctl stop -m fast, then start; the writer pauses across it so its
 * own transactions are never in doubt); 50 more, then the writer stops. Afterwards every row and version is in the topic exactly once,
 * in commit order per key, and the same CDC process is still the one running.
 */

const stackDir = mkdtempSync(path.join(os.tmpdir(), 'engage-cdc-faults-'));
process.env.STACK_DIR = stackDir;
process.env.STACK_PORT_OFFSET = '1700';
process.env.STACK_KAFKA_HEAP = process.env.STACK_KAFKA_HEAP ?? '512m';

/** Transactions written before the broker stops, after it is back, and after PostgreSQL is back. */
const STEP = 50;
const ROWS = 100;

let config: Config;
let env: TestEnv | undefined;
let cdc: CdcChild | undefined;

before(async () => {
  // Reuse the shared stack's resolved Kafka classpath (no Maven run).
  const shared = path.resolve('.stack', 'kafka');
  mkdirSync(path.join(stackDir, 'kafka'), { recursive: true });
  for (const f of readdirSync(shared).filter((n) => n.startsWith('classpath-')))
    copyFileSync(path.join(shared, f), path.join(stackDir, 'kafka', f));
  config = loadConfig();
  await stackUp(config);
  env = await createTestEnv({ CDC_HEARTBEAT_SECONDS: '1', LOG_LEVEL: 'info' });
});

after(async () => {
  if (cdc) await killHard(cdc);
  await env?.cleanup().catch(() => undefined);
  await stackRemove(config);
});

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

test(
  'Kafka broker restart and PostgreSQL restart: every change exactly once, in order',
  { timeout: 600_000 },
  async (t) => {
    assert.ok(env);
    const url = env.config.databaseUrl;
    cdc = spawnCdc(env.env);
    const child = cdc;
    const streaming = async () => {
      const c = await connect(url);
      try {
        return (
          (
            await c.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active`, [
              env?.config.CDC_SLOT_NAME,
            ])
          ).rowCount === 1
        );
      } finally {
        await c.end();
      }
    };
    await waitFor('cdc streaming', streaming, { timeoutMs: 120_000, everyMs: 200 });
    const gate = { open: true, parked: false, stop: false, written: 0, updates: 0 };
    const writing = (async () => {
      let w = await connect(url);
      for (let i = 0; !gate.stop; i++) {
        if (!gate.open) {
          gate.parked = true;
          await waitFor('the gate to open again', () => gate.open, 300_000);
          gate.parked = false;
          await w.end().catch(() => undefined);
          w = await connect(url); // a fresh session after the PostgreSQL restart
        }
        await w.query('BEGIN');
        await w.query(
          `INSERT INTO engagement_events (event_ts, duration_ms) SELECT now(), 0 FROM generate_series(1, ${ROWS})`,
        );
        if (i % 4 === 0 && i > 0)
          gate.updates +=
            (await w.query(`UPDATE engagement_events SET duration_ms = duration_ms + 1 WHERE id % 97 = ${i % 97}`))
              .rowCount ?? 0;
        await w.query('COMMIT');
        gate.written = i + 1;
        await sleep(60); // the writer's pacing: transactions keep arriving through both outages
      }
      await w.end();
    })();

    const wrote = (n: number) => {
      const from = gate.written;
      return waitFor(`${n} more transactions`, () => gate.written >= from + n, 300_000);
    };
    await wrote(STEP);
    const kafkaPid = readStackState(config.stackDir)?.services.kafka?.pid;
    assert.ok(
      kafkaPid,
      "this test stops its own stack's broker: unset KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL and REDIS_URL to let it start one",
    );
    t.diagnostic(`stopping Kafka (pid ${kafkaPid}) at txn ${gate.written}`);
    await stopPid(kafkaPid, 30_000);
    await sleep(4000); // the outage itself: the broker stays away while the writer commits
    await stackUp(config);
    t.diagnostic(`Kafka back at txn ${gate.written}`);
    await wrote(STEP);
    gate.open = false;
    const pgState = readStackState(config.stackDir)?.services.postgres;
    assert.ok(pgState, "this test restarts its own stack's PostgreSQL: unset DATABASE_URL to let it start one");
    t.diagnostic(`restarting PostgreSQL at txn ${gate.written}`);
    await waitFor('the writer to park between transactions', () => gate.parked, 30_000);
    await stopPrivatePostgres(pgState);
    await sleep(2000); // the outage itself: PostgreSQL stays away for a while
    await stackUp(config);
    gate.open = true;
    t.diagnostic('PostgreSQL back');
    await wrote(STEP);
    gate.stop = true;
    await writing;
    t.diagnostic(`${gate.written} transactions of ${ROWS} rows written`);

    const c = await connect(url);
    const target = parseLsn(
      (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l ?? '0/0',
    );
    await waitFor(
      'caught up',
      async () => {
        if (child.child.exitCode !== null) throw new Error(`engage cdc exited:\n${child.output().slice(-4000)}`);
        const r = await c.query<{ l: string | null }>(
          'SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1',
          [env?.config.CDC_SLOT_NAME],
        );
        const l = r.rows[0]?.l;
        return l !== null && l !== undefined && parseLsn(l) >= target;
      },
      { timeoutMs: 300_000, everyMs: 250 },
    );
    const expected = new Map<string, number>();
    for (const r of (
      await c.query<{ id: string; v: number }>('SELECT id::text AS id, duration_ms AS v FROM engagement_events')
    ).rows)
      expected.set(r.id, r.v);
    await c.end();
    child.child.kill('SIGTERM');
    assert.equal((await child.exited).code, 0);
    cdc = undefined;
    const failures = child
      .output()
      .split('\n')
      .filter((l) => l.includes('cdc session failed') || l.includes('cannot start a session yet'));
    t.diagnostic(`session failures/retries logged: ${failures.length}`);
    for (const f of failures.slice(0, 6)) t.diagnostic(f.slice(0, 300));

    const recs = await readToEnd(
      env.config,
      env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS,
      env.config.KAFKA_TOPIC_PARTITIONS,
      120_000,
    );
    const versions = new Map<string, number[]>();
    for (const r of recs) {
      assert.ok(r.value);
      const id = String(r.value.after?.id);
      if (r.value.op === 'c') assert.ok(!versions.has(id), `row ${id} created twice`);
      else assert.equal(r.value.op, 'u');
      versions.set(id, [...(versions.get(id) ?? []), Number(r.value.after?.duration_ms)]);
    }
    assert.equal(expected.size, gate.written * ROWS);
    assert.equal(versions.size, expected.size);
    for (const [id, final] of expected)
      assert.deepEqual(
        versions.get(id),
        Array.from({ length: final + 1 }, (_, i) => i),
        `row ${id}`,
      );
    assert.equal(recs.length, expected.size + gate.updates);
  },
);
