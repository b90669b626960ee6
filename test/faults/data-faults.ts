import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TRUNCATED_VALUE } from '../../src/core/types.js';
import { isAlive } from '../../src/stack/process.js';
import { waitFor } from '../helpers/wait.js';
import { PIPELINE_COMPONENTS } from '../e2e/pipeline-run.js';
import { queryWarehouse, readRedisWindow } from '../e2e/sink-reads.js';
import { KEY_SQL, withDb } from './expected-events.js';
import { waitFlowing, waitRestarted, type FaultRow } from './fault-context.js';

/**
 * Rows 7–10 of the fault matrix: the warehouse's file taken by another process, an oversized row,
 * a table reset that makes ids come again, and every component killed.
 */

const here = path.dirname(fileURLToPath(import.meta.url));

export const duckdbLocked: FaultRow = {
  id: 7,
  name: 'DuckDB file locked by another process for 60 s',
  how: 'SIGKILL to sink-warehouse; at once another process opens the DuckDB file read-write and holds it 60 s while the supervisor restarts the sink',
  async inject(ctx) {
    const { sup } = ctx.run;
    const holdMs = Math.round(60_000 * ctx.scale);
    const holder = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(here, 'hold-duckdb-lock.ts'), ctx.run.config.DUCKDB_PATH, String(holdMs)],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const said: string[] = [];
    createInterface({ input: holder.stdout }).on('line', (l) => said.push(l));
    const exited = new Promise<number | null>((resolve) => holder.once('exit', (code) => resolve(code)));
    try {
      await waitFor('the lock holder to load DuckDB', () => said.includes('ready'), { timeoutMs: 60_000, everyMs: 50 });
      const sink = sup.child('sink-warehouse');
      const logFrom = sink ? statSync(sink.status().log).size : 0;
      sink?.kill('SIGKILL');
      holder.stdin.write('go\n');
      await waitFor(
        'the lock holder to take the file (or give up)',
        () => said.find((l) => l.startsWith('locked') || l.startsWith('never-locked')),
        { timeoutMs: 30_000, everyMs: 20 },
      );
      const got = said.find((l) => l.startsWith('never-locked'));
      if (got) {
        ctx.problems.push(`fault not injected: the other process could not open the file (${got})`);
        return;
      }
      // While the file is held: the sink may fail to open it, but must be restarted (not stopped for good).
      const states = new Set<string>();
      const watch = setInterval(() => {
        const s = sink?.status();
        if (s) states.add(s.state);
      }, 200);
      const code = await exited;
      clearInterval(watch);
      ctx.notes.push(
        `held ${(holdMs / 1000).toFixed(0)} s; sink states meanwhile: ${[...states].join(', ')}; restarts ${sink?.status().restarts ?? '-'}`,
      );
      if (code !== 0) ctx.problems.push(`the lock holder exited ${code}`);
      // The sink must have met the lock (else the fault was not exercised): its log says so.
      const met = sink
        ? readFileSync(sink.status().log)
            .subarray(logFrom)
            .toString('utf8')
            .split('\n')
            .filter((l) => /lock/i.test(l))
        : [];
      ctx.notes.push(
        `sink log lines about the lock: ${met.length}${met[0] ? ` (first: ${met[0].slice(0, 240)})` : ''}`,
      );
      if (met.length === 0) ctx.problems.push('the restarted sink never met the lock: the fault was not exercised');
    } finally {
      if (holder.exitCode === null) holder.kill('SIGKILL');
    }
  },
};

/** The oversized row's key, kept between injection and proof. */
let bigKey = '';

export const oversizedRow: FaultRow = {
  id: 8,
  name: 'a 2 MB raw_payload row among normal rows',
  how: 'INSERT of one row whose raw_payload is 2 MB of JSON while the generator writes; it must reach every sink with raw_payload marked truncated by the CDC, and not the DLQ',
  async inject(ctx) {
    bigKey = await withDb(ctx.run.config, async (db) => {
      const res = await db.query<{ key: string }>(
        `INSERT INTO engagement_events AS e (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload)
         SELECT id, gen_random_uuid(), 'play', now(), 1000, 'web', jsonb_build_object('blob', repeat('x', 2 * 1024 * 1024)) FROM content LIMIT 1
         RETURNING ${KEY_SQL} AS key`,
      );
      return res.rows[0]?.key ?? '';
    });
    ctx.notes.push(`event ${bigKey}`);
  },
  async whileWarehouseStopped(ctx) {
    const [id, us] = bigKey.split('@');
    const rows = await queryWarehouse(
      ctx.run.config.DUCKDB_PATH,
      `SELECT raw_payload::VARCHAR AS p FROM engagement_events_enriched WHERE event_id = ${Number(id)} AND epoch_us(event_ts) = ${BigInt(us ?? '0')}`,
    );
    const payload = String(rows[0]?.p ?? '');
    if (rows.length !== 1) ctx.problems.push(`warehouse: ${rows.length} rows for the oversized event ${bigKey}`);
    else if (!payload.includes(TRUNCATED_VALUE))
      ctx.problems.push(
        `warehouse: the oversized event's raw_payload is not marked truncated (${payload.length} bytes: ${payload.slice(0, 80)})`,
      );
  },
  async verify(ctx, proof) {
    const at = ctx.run.receiver.event(bigKey);
    if (!at) ctx.problems.push(`external: the oversized event ${bigKey} never arrived`);
    else if (!JSON.stringify(at.event?.raw_payload ?? '').includes(TRUNCATED_VALUE))
      ctx.problems.push('external: the oversized event arrived without the truncation marker');
    if (!(await readRedisWindow(ctx.run.config)).keys.has(bigKey))
      ctx.problems.push(`Redis: the oversized event ${bigKey} is not in the window`);
    if (proof.parked.some((p) => p.key === bigKey)) ctx.problems.push('DLQ: the oversized event was parked');
  },
};

export const truncateRestartIdentity: FaultRow = {
  id: 9,
  name: 'TRUNCATE … RESTART IDENTITY, then new events',
  how: 'generator stopped, every row so far recorded, `TRUNCATE engagement_events RESTART IDENTITY`, generator started again: the new events reuse ids 1, 2, …',
  async inject(ctx) {
    const generator = ctx.run.sup.child('generator');
    await generator?.stop();
    await ctx.expected.snapshot(ctx.run.config);
    await withDb(ctx.run.config, (db) => db.query('TRUNCATE engagement_events RESTART IDENTITY'));
    generator?.start();
    // The new events must exist before the proof stops the load again.
    await waitFor(
      'the generator to write rows after the TRUNCATE',
      () =>
        withDb(
          ctx.run.config,
          async (db) =>
            Number((await db.query<{ n: string }>('SELECT count(*)::text AS n FROM engagement_events')).rows[0]?.n) >
            500,
        ),
      { timeoutMs: 120_000, everyMs: 1000 },
    );
  },
  async verify(ctx) {
    const reused = ctx.expected.reusedIds();
    ctx.notes.push(`${reused} ids carried by two events`);
    if (reused === 0) ctx.problems.push('no id was reused: the fault did not happen');
  },
};

/** The pids of processes whose environment carries the run's STACK_DIR (every component's does). */
export function runProcesses(stackDir: string): number[] {
  const ps = spawnSync('ps', ['-e', '-ww', '-o', 'pid=,args=', 'e'], { encoding: 'utf8' });
  const mark = ` STACK_DIR=${stackDir} `;
  return ps.stdout
    .split('\n')
    .filter((l) => `${l} `.includes(mark))
    .map((l) => Number(l.trim().split(/\s+/)[0]))
    .filter((pid) => Number.isInteger(pid) && pid !== process.pid);
}

export const killEverything: FaultRow = {
  id: 10,
  name: 'every component SIGKILLed twice',
  how: "SIGKILL to each component's pid as the supervisor knows it, the next once the killed one runs again; twice round; then `ps` must show no process of the run but the ones the supervisor runs now",
  async inject(ctx) {
    const killed: number[] = [];
    for (let round = 1; round <= 2; round++) {
      for (const name of PIPELINE_COMPONENTS) {
        const child = ctx.run.sup.child(name);
        const pid = await waitRestarted(ctx, name, undefined);
        child?.kill('SIGKILL');
        killed.push(pid);
        await waitRestarted(ctx, name, pid);
        // The next kill hits a pipeline at work again, not one still starting up.
        await waitFlowing(ctx, `the restart of ${name}`);
      }
    }
    const alive = killed.filter((pid) => isAlive(pid));
    if (alive.length > 0) ctx.problems.push(`killed pids still alive: ${alive.join(', ')}`);
    ctx.notes.push(`${killed.length} kills`);
  },
  async verify(ctx) {
    const known = new Set(
      ctx.run.sup
        .status()
        .map((s) => s.pid)
        .filter((p): p is number => p !== undefined),
    );
    const marked = runProcesses(ctx.run.stackDir);
    const survivors = marked.filter((pid) => !known.has(pid));
    ctx.notes.push(
      `ps: ${marked.length} processes of the run, all known to the supervisor: ${survivors.length === 0 ? 'yes' : 'no'}`,
    );
    if (survivors.length > 0) ctx.problems.push(`survivors not known to the supervisor: ${survivors.join(', ')}`);
    if (marked.length === 0) ctx.problems.push('ps found no process of the run: the mark is wrong');
  },
};

export const DATA_FAULTS: readonly FaultRow[] = [duckdbLocked, oversizedRow, truncateRestartIdentity, killEverything];
