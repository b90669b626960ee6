import assert from 'node:assert/strict';
import type pg from 'pg';
import { parseLsn } from '../../src/cdc/lsn.js';
import type { CdcPosition } from '../../src/cdc/position-store.js';
import { createKafka, idempotentProducer } from '../../src/kafka/client.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { killHard, spawnCdc, type CdcChild } from './child.js';
import { pgClient, readToEnd, readTopics } from './helpers.js';

/**
 * The incremental snapshot under SIGKILL, on the real stack. `engagement_events` holds `rows` rows
 * (version 0 in `duration_ms`) before the first start with CDC_SNAPSHOT_MODE=incremental; a writer
 * then keeps inserting rows (version 0), updating random rows (version + 1) and deleting random
 * rows, one transaction at a time, while `engage cdc` (a child process) snapshots in chunks and
 * is SIGKILLed `kills` times, each once a few more chunks are committed, and restarted. After the
 * snapshot finished and the CDC caught up, the events topic (read_committed) must hold, per row:
 * at most one `c` and at most one `r`; every update once, in order (versions 1, 2, … among the
 * `u` events); an `r` carrying exactly the version of the updates before it (the stream won every
 * row changed inside a chunk's window, so a row read is never older or newer than its place);
 * nothing after a delete; and the row's final state (or its delete). Every pre-existing row is
 * read (`r`) or has change events; every row the writer inserted has its `c`.
 * Shared by test/cdc/cdc-incremental-snapshot.test.ts and the e2e suite.
 */

export interface IncrementalCase {
  rows: number;
  chunkRows: number;
  /** CDC_SNAPSHOT_MAX_ROWS_PER_SECOND: slow enough for the kills to land inside the snapshot. */
  maxRowsPerSecond: number;
  kills: number;
  /** Chunks of engagement_events committed between two kills. */
  chunksPerKill: number;
  timeoutMs: number;
  diagnostic(line: string): void;
}

interface Writer {
  stop: boolean;
  inserts: number;
  updates: number;
  deletes: number;
  done: Promise<void>;
}

function startWriter(db: pg.Client, maxPre: number): Writer {
  const w: Writer = { stop: false, inserts: 0, updates: 0, deletes: 0, done: Promise.resolve() };
  w.done = (async () => {
    while (!w.stop) {
      await db.query('BEGIN');
      await db.query(
        `INSERT INTO engagement_events (event_ts, duration_ms, device) SELECT now(), 0, 'w' FROM generate_series(1, 5)`,
      );
      const ids = Array.from({ length: 8 }, () => 1 + Math.floor(Math.random() * maxPre));
      const u = await db.query(
        'UPDATE engagement_events SET duration_ms = duration_ms + 1 WHERE id = ANY($1::bigint[])',
        [ids],
      );
      const d = await db.query('DELETE FROM engagement_events WHERE id = $1', [1 + Math.floor(Math.random() * maxPre)]);
      await db.query('COMMIT');
      w.inserts += 5;
      w.updates += u.rowCount ?? 0;
      w.deletes += d.rowCount ?? 0;
      await sleep(5); // the writer's pacing: changes keep coming during every chunk and every kill
    }
  })();
  return w;
}

/** The last log lines' messages (and errors) of a CDC child, short enough for a timeout error. */
function lastMessages(c: CdcChild): string[] {
  return c
    .output()
    .trim()
    .split('\n')
    .slice(-8)
    .map((l) => {
      try {
        const j = JSON.parse(l) as { msg?: string; err?: unknown };
        return `${j.msg ?? ''}${j.err ? ` ${JSON.stringify(j.err).slice(0, 200)}` : ''}`;
      } catch {
        return l.slice(0, 200);
      }
    });
}

/**
 * The latest committed position, from one read_committed reader of the position topic kept open
 * in the background (a readLastPosition per probe takes seconds while the CDC commits busily).
 */
function watchPosition(env: TestEnv): { latest(): CdcPosition | null; stop(): Promise<void> } {
  let latest: CdcPosition | null = null;
  let stopping = false;
  const reading = readTopics(
    env.config,
    [env.config.KAFKA_TOPIC_CDC_POSITION],
    () => stopping,
    3_600_000,
    (r) => {
      if (r.key === env.config.CDC_SLOT_NAME && r.value) latest = r.value as unknown as CdcPosition;
    },
  ).catch(() => []);
  return {
    latest: () => latest,
    async stop() {
      stopping = true;
      // The reader looks at `stopping` after a batch: one more record makes one.
      const producer = idempotentProducer(createKafka(env.config, 'test-position-watch'));
      await producer.connect();
      await producer.send({
        topic: env.config.KAFKA_TOPIC_CDC_POSITION,
        messages: [{ key: 'test-watch-stop', value: '{}' }],
      });
      await producer.disconnect();
      await reading;
    },
  };
}

export async function incrementalSnapshotCase(c: IncrementalCase): Promise<void> {
  const env = await createTestEnv({
    CDC_SNAPSHOT_MODE: 'incremental',
    CDC_SNAPSHOT_CHUNK_ROWS: String(c.chunkRows),
    CDC_SNAPSHOT_MAX_ROWS_PER_SECOND: String(c.maxRowsPerSecond),
    CDC_HEARTBEAT_SECONDS: '1',
    LOG_LEVEL: 'info', // the restart's "resuming after the last committed chunk" line is asserted
  });
  const db = await pgClient(env.config);
  const wdb = await pgClient(env.config);
  let cdc: CdcChild | undefined;
  let writer: Writer | undefined;
  let watch: ReturnType<typeof watchPosition> | undefined;
  try {
    await db.query(
      `INSERT INTO engagement_events (event_ts, duration_ms, device) SELECT now(), 0, 'pre' FROM generate_series(1, $1::int)`,
      [c.rows],
    );
    const bounds = (
      await db.query<{ min: string; max: string }>(
        'SELECT min(id)::text AS min, max(id)::text AS max FROM engagement_events',
      )
    ).rows[0];
    const minPre = Number(bounds?.min);
    const maxPre = Number(bounds?.max);
    const chunkOf = () => {
      const p = watch?.latest();
      const task = p?.incremental?.tasks[0];
      return { left: p?.incremental?.tasks.length ?? null, table: task?.table, chunk: task?.chunk ?? 0 };
    };
    const resumed: string[] = [];
    for (let run = 0; run <= c.kills; run++) {
      cdc = spawnCdc(env.env);
      const child = cdc;
      const alive = () => {
        if (child.child.exitCode !== null) throw new Error(`engage cdc exited:\n${child.output().slice(-3000)}`);
      };
      if (run === 0) {
        // The writer starts once the CDC streams: its slot is then past its consistent point (a
        // transaction committed while the slot is being created is not decoded: the snapshot has it).
        await waitFor(
          'the CDC streaming',
          async () => {
            alive();
            const r = await db.query(
              `SELECT 1 FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
                WHERE s.slot_name = $1 AND r.application_name LIKE 'engage-cdc-stream:%'`,
              [env.config.CDC_SLOT_NAME],
            );
            return r.rowCount === 1;
          },
          { timeoutMs: 60_000, everyMs: 20 },
        );
        watch = watchPosition(env); // the topics exist: the CDC creates them before its slot
        writer = startWriter(wdb, maxPre);
      }
      if (run === c.kills) break;
      const target = (run + 1) * c.chunksPerKill;
      const seen = await waitFor(
        `${target} chunks of engagement_events committed`,
        async () => {
          alive();
          return chunkOf();
        },
        {
          timeoutMs: c.timeoutMs,
          everyMs: 200,
          until: (s) => s.table === 'public.engagement_events' && s.chunk >= target,
          describe: () => lastMessages(child),
        },
      );
      await killHard(child);
      if (run > 0) resumed.push(/resuming after the last committed chunk/.test(child.output()) ? 'resumed' : 'NOT');
      c.diagnostic(
        `run ${run}: SIGKILLed at chunk ${seen.chunk} (writer: ${writer?.inserts} inserts, ${writer?.updates} updates)`,
      );
    }
    const last = cdc;
    await waitFor(
      'the snapshot finished (no task left in the committed position)',
      async () => {
        if (last && last.child.exitCode !== null) throw new Error(`engage cdc exited:\n${last.output().slice(-3000)}`);
        return chunkOf().left === 0;
      },
      { timeoutMs: c.timeoutMs, everyMs: 500 },
    );
    if (writer) {
      writer.stop = true;
      await writer.done;
    }
    const endLsn = parseLsn(
      (await db.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l ?? '0/0',
    );
    await waitFor(
      'the CDC caught up',
      async () => {
        const r = await db.query<{ l: string | null }>(
          'SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1',
          [env.config.CDC_SLOT_NAME],
        );
        const l = r.rows[0]?.l;
        return l !== null && l !== undefined && parseLsn(l) >= endLsn;
      },
      { timeoutMs: c.timeoutMs, everyMs: 200 },
    );
    assert.match(last?.output() ?? '', /resuming after the last committed chunk/, 'the last run resumed the snapshot');
    last?.child.kill('SIGTERM');
    assert.equal((await last?.exited)?.code, 0, `graceful stop:\n${last?.output().slice(-3000)}`);
    cdc = undefined;

    const expected = new Map<number, number>();
    for (const r of (
      await db.query<{ id: string; v: number }>('SELECT id::text AS id, duration_ms AS v FROM engagement_events')
    ).rows)
      expected.set(Number(r.id), r.v);
    const seen = new Map<number, { c: number; r: number; nextU: number; deleted: boolean; last: number | null }>();
    const problems: string[] = [];
    let reads = 0;
    await readToEnd(
      env.config,
      env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS,
      env.config.KAFKA_TOPIC_PARTITIONS,
      c.timeoutMs,
      (rec) => {
        const v = rec.value;
        if (!v) return; // tombstone after a delete
        const row = v.op === 'd' ? v.before : v.after;
        const id = Number(row?.id);
        const s = seen.get(id) ?? { c: 0, r: 0, nextU: 1, deleted: false, last: null };
        seen.set(id, s);
        const version = Number(v.after?.duration_ms);
        if (s.deleted && problems.length < 20) problems.push(`${id}: ${v.op} after its delete`);
        if (v.op === 'c') {
          if (++s.c > 1 || version !== 0) problems.push(`${id}: second create or version ${version}`);
        } else if (v.op === 'r') {
          reads++;
          assert.equal(v.source.snapshot, 'incremental');
          if (++s.r > 1) problems.push(`${id}: read twice`);
          if (version !== s.nextU - 1)
            problems.push(`${id}: read at version ${version}, ${s.nextU - 1} updates before it`);
        } else if (v.op === 'u') {
          if (version !== s.nextU) problems.push(`${id}: update to ${version}, expected ${s.nextU}`);
          s.nextU = version + 1;
        } else if (v.op === 'd') s.deleted = true;
        s.last = v.op === 'd' ? null : version;
      },
    );
    let missing = 0;
    let wrong = 0;
    for (const [id, v] of expected) {
      const s = seen.get(id);
      if (!s) missing++;
      else if (s.last !== v) wrong++;
      if (id > maxPre && s && s.c !== 1) problems.push(`${id}: written by the writer, ${s.c} creates`);
    }
    for (const [id, s] of seen)
      if (!expected.has(id) && !s.deleted) problems.push(`${id}: gone from the table, no delete`);
    for (let id = minPre; id <= maxPre; id++) if (!seen.has(id)) problems.push(`${id}: pre-existing row never seen`);
    c.diagnostic(
      `${reads} rows read by the snapshot, ${expected.size} rows in the table; writer ${writer?.inserts} inserts, ${writer?.updates} updates, ${writer?.deletes} deletes; restarts: ${resumed.join(', ')}`,
    );
    assert.deepEqual({ missing, wrong, problems: problems.slice(0, 20) }, { missing: 0, wrong: 0, problems: [] });
    assert.ok(reads > 0 && reads <= c.rows);
  } finally {
    await watch?.stop();
    if (writer) {
      writer.stop = true;
      await writer.done.catch(() => undefined);
    }
    if (cdc) await killHard(cdc);
    await db.end();
    await wdb.end();
    await env.cleanup();
  }
}
