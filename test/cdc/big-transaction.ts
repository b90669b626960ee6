import assert from 'node:assert/strict';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { parseLsn } from '../../src/cdc/lsn.js';
import { createKafka } from '../../src/kafka/client.js';
import { createTestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';
import { killHard, spawnCdc, type CdcChild } from './child.js';
import { pgClient, readToEnd } from './helpers.js';

/**
 * One PostgreSQL transaction of `rows` inserts, larger than CDC_SPLIT_TRANSACTION_ROWS: `engage cdc`
 * (a child process) is SIGKILLed once at least two of its parts are committed to Kafka and the
 * transaction is not whole there yet, then restarted and left to catch up. Read with
 * read_committed afterwards, the events topic holds every row of the transaction exactly once.
 * Shared by test/cdc/cdc-big-transaction.test.ts (200,000 rows in `npm test`) and
 * test/e2e/cdc-big-transaction.e2e.test.ts (3,000,000 rows).
 */

export interface BigTransactionCase {
  rows: number;
  splitRows: number;
  /** How long the CDC may take to carry the whole transaction, per run. */
  timeoutMs: number;
  diagnostic(line: string): void;
}

export async function bigTransactionCase(c: BigTransactionCase): Promise<void> {
  const env = await createTestEnv({
    CDC_SNAPSHOT_MODE: 'never',
    CDC_SPLIT_TRANSACTION_ROWS: String(c.splitRows),
    CDC_HEARTBEAT_SECONDS: '1',
    LOG_LEVEL: 'info', // the restart's "resuming a split transaction" line is asserted
  });
  const db = await pgClient(env.config);
  let cdc: CdcChild | undefined;
  const topic = env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS;
  /** Records of the events topic a read_committed reader sees now (its last stable offsets). */
  const committed = async (): Promise<number> => {
    const admin = createKafka(env.config, 'test-big-txn-lso').admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(topic, { isolationLevel: KafkaJS.IsolationLevel.READ_COMMITTED });
      return offsets.reduce((n, p) => n + Number(p.high), 0);
    } catch {
      return 0; // not created yet
    } finally {
      await admin.disconnect();
    }
  };
  try {
    cdc = spawnCdc(env.env);
    const first = cdc;
    await waitFor(
      'the CDC streaming (its slot active)',
      async () => {
        if (first.child.exitCode !== null) throw new Error(`engage cdc exited:\n${first.output().slice(-3000)}`);
        const r = await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [
          env.config.CDC_SLOT_NAME,
        ]);
        return r.rowCount === 1;
      },
      { timeoutMs: c.timeoutMs, everyMs: 50 },
    );
    const t0 = Date.now();
    await db.query(
      `INSERT INTO engagement_events (event_ts, duration_ms, device)
       SELECT now() - (i % 3600) * interval '1 second', i % 600000, 'big' FROM generate_series(1, $1::int) i`,
      [c.rows],
    );
    c.diagnostic(`${c.rows} rows committed in one transaction in ${Date.now() - t0} ms`);
    // Two parts in Kafka (transaction markers count in the offsets, hence the margin below the whole).
    const seenAtKill = await waitFor(
      'two parts of the transaction committed to Kafka',
      async () => {
        const n = await committed();
        return n >= 2 * c.splitRows ? n : undefined;
      },
      { timeoutMs: c.timeoutMs, everyMs: 20 },
    );
    await killHard(cdc);
    c.diagnostic(`SIGKILLed with ${seenAtKill} offsets committed of ${c.rows} rows`);
    assert.ok(seenAtKill < c.rows, 'the kill came before the transaction was whole in Kafka');

    cdc = spawnCdc(env.env);
    const second = cdc;
    const target = parseLsn(
      (await db.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l ?? '0/0',
    );
    await waitFor(
      'the restarted CDC past the transaction (confirmed_flush_lsn)',
      async () => {
        if (second.child.exitCode !== null) throw new Error(`engage cdc exited:\n${second.output().slice(-3000)}`);
        const r = await db.query<{ l: string | null }>(
          'SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1',
          [env.config.CDC_SLOT_NAME],
        );
        const l = r.rows[0]?.l;
        return l !== null && l !== undefined && parseLsn(l) >= target;
      },
      { timeoutMs: c.timeoutMs, everyMs: 200 },
    );
    assert.match(second.output(), /resuming a split transaction/, 'the restart resumed inside the transaction');
    second.child.kill('SIGTERM');
    assert.equal((await second.exited).code, 0, `graceful stop:\n${second.output().slice(-3000)}`);
    cdc = undefined;

    const seen = new Uint8Array(c.rows + 1);
    const ids = await db.query<{ min: string }>(
      "SELECT min(id)::text AS min FROM engagement_events WHERE device = 'big'",
    );
    const base = Number(ids.rows[0]?.min) - 1;
    let twice = 0;
    let other = 0;
    await readToEnd(env.config, topic, env.config.KAFKA_TOPIC_PARTITIONS, c.timeoutMs, (r) => {
      const id = Number(r.value?.after?.id) - base;
      if (!(id >= 1 && id <= c.rows) || r.value?.op !== 'c') other++;
      else if ((seen[id] = (seen[id] ?? 0) + 1) > 1) twice++;
    });
    const missing = seen.reduce((n, v, i) => n + (i > 0 && v === 0 ? 1 : 0), 0);
    assert.deepEqual({ missing, twice, other }, { missing: 0, twice: 0, other: 0 }, 'every row once');
  } finally {
    if (cdc) await killHard(cdc);
    await db.end();
    await env.cleanup();
  }
}
