import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import {
  PIPELINE_COMPONENTS,
  PROOF_ENV,
  insertBadRows,
  logTails,
  startPipelineRun,
  type PipelineRun,
} from '../e2e/pipeline-run.js';
import { DATA_FAULTS } from './data-faults.js';
import { ExpectedEvents } from './expected-events.js';
import { waitFlowing, type FaultContext, type FaultRow } from './fault-context.js';
import { TABLE_LEGEND, formatDetails, formatRow, formatTable, type MatrixRow } from './matrix-table.js';
import { SERVICE_FAULTS } from './service-faults.js';
import { NotCaughtUp, waitAndProve } from './sink-proof.js';

/**
 * The fault matrix (`npm run test:faults`): the whole pipeline — cdc, processor and the three
 * sinks as supervised child processes, the generator loading it at FAULT_RATE events/s (150), the
 * reference receiver in this process — on a private stack (port offset 400–490), through one fault
 * after another. After each, with the load stopped, it waits (deadline FAULT_DEADLINE_S, 180 s)
 * until every sink has caught up and proves from the sinks themselves, per sink, how many events
 * were lost and duplicated and what the DLQ holds: 0 / 0 / the 4 bad rows inserted at the start.
 * It prints one table row per fault and the table at the end, then asserts every row.
 *
 * Developing: FAULT_ROWS=1,8 runs only those rows (row 0, the baseline with the bad rows, always
 * runs); FAULT_SCALE=0.2 shortens each fault's own duration; FAULT_KEEP_LOGS=1 keeps the logs of a
 * run that passed. The table in docs/operations.md is
 * from a run with neither.
 */

const RATE = Number(process.env.FAULT_RATE ?? '150');
const SCALE = Number(process.env.FAULT_SCALE ?? '1');
const DEADLINE_MS = Number(process.env.FAULT_DEADLINE_S ?? '180') * 1000;
const ONLY = process.env.FAULT_ROWS ? new Set(process.env.FAULT_ROWS.split(',').map(Number)) : undefined;

const baseline: FaultRow = {
  id: 0,
  name: 'none (load, and 4 bad rows)',
  how: 'four rows every stage must refuse (null content, negative duration, 30 days ahead, before 2000): the DLQ entries every later row expects',
  async inject(ctx) {
    const bad = await insertBadRows(ctx.run.db);
    ctx.expected.markBad(bad.map((r) => `${r.id}@${r.us}`));
    await waitFlowing(ctx, 'the start');
  },
};

const ROWS: readonly FaultRow[] = [baseline, ...SERVICE_FAULTS, ...DATA_FAULTS].filter(
  (r) => r.id === 0 || !ONLY || ONLY.has(r.id),
);

/** A component stopped for good (a fatal exit) is a problem of the row; it is started again so the matrix goes on. */
function reviveFailed(ctx: FaultContext): void {
  for (const s of ctx.run.sup.status()) {
    if (s.state !== 'failed') continue;
    const what = `${s.name} stopped for good (not restarted by the supervisor): ${s.notRestarted ?? s.lastExit ?? '?'}`;
    if ((PIPELINE_COMPONENTS as readonly string[]).includes(s.name)) ctx.problems.push(what);
    else ctx.notes.push(what);
    ctx.run.sup.child(s.name)?.start();
  }
}

function restartCounts(run: PipelineRun): Map<string, number> {
  return new Map(run.sup.status().map((s) => [s.name, s.restarts]));
}

/** Notes every pipeline component the supervisor restarted during the row (a kill the row made, or an exit of its own). */
function noteRestarts(ctx: FaultContext, before: Map<string, number>): void {
  for (const s of ctx.run.sup.status()) {
    const n = s.restarts - (before.get(s.name) ?? 0);
    if (n > 0 && (PIPELINE_COMPONENTS as readonly string[]).includes(s.name))
      ctx.notes.push(`${s.name} restarted ${n}× by the supervisor (last ${s.lastExit ?? '?'})`);
  }
}

function checkProof(ctx: FaultContext, proof: NonNullable<MatrixRow['proof']>): void {
  for (const [sink, c] of [
    ['Redis', proof.redis],
    ['warehouse', proof.warehouse],
    ['external', proof.external],
  ] as const) {
    if (c.lost > 0) ctx.problems.push(`${sink}: ${c.lost} events lost`);
    if (c.duplicated > 0) ctx.problems.push(`${sink}: ${c.duplicated} events duplicated`);
    if (c.unknown > 0) ctx.problems.push(`${sink}: ${c.unknown} events PostgreSQL never held as valid`);
  }
  if (proof.dlq.badFound !== ctx.expected.badCount)
    ctx.problems.push(`DLQ: ${proof.dlq.badFound} of the ${ctx.expected.badCount} bad rows`);
  for (const u of proof.dlq.unexpected.slice(0, 5)) ctx.problems.push(`DLQ: unexpected entry ${u}`);
}

async function runRow(
  run: PipelineRun,
  expected: ExpectedEvents,
  row: FaultRow,
  log: (l: string) => void,
): Promise<MatrixRow> {
  const ctx: FaultContext = { run, expected, log, scale: SCALE, notes: [], problems: [] };
  log(`faults: row ${row.id}: ${row.name} — ${row.how}`);
  const restartsBefore = restartCounts(run);
  let t0 = Date.now();
  try {
    // Under load: the generator (started again after the last proof) feeds the whole pipeline.
    if (row.id !== 0) await waitFlowing(ctx, 'the last proof');
    t0 = Date.now();
    await row.inject(ctx);
  } catch (err) {
    ctx.problems.push(`injecting: ${err instanceof Error ? err.message : String(err)}`);
  }
  const faultSeconds = (Date.now() - t0) / 1000;
  reviveFailed(ctx);
  let proof: MatrixRow['proof'] = null;
  const generator = run.sup.child('generator');
  try {
    // Nothing writes while the row is proven: the expectation is then exactly what PostgreSQL holds.
    await generator?.stop();
    await expected.snapshot(run.config);
    proof = await waitAndProve({
      config: run.config,
      sup: run.sup,
      receiver: run.receiver,
      expected,
      log,
      deadlineMs: DEADLINE_MS,
      whileWarehouseStopped:
        row.whileWarehouseStopped &&
        (() => (row.whileWarehouseStopped as NonNullable<FaultRow['whileWarehouseStopped']>)(ctx)),
    });
    checkProof(ctx, proof);
    await row.verify?.(ctx, proof);
  } catch (err) {
    ctx.problems.push(`proving: ${err instanceof Error ? err.message : String(err)}`);
    if (err instanceof NotCaughtUp) {
      // The row has failed. So that the next rows test their own fault and not this one's
      // aftermath, the test restarts every component (SIGTERM, upstream first, then start): a
      // stage stuck anywhere upstream leaves every sink behind, not only the one named.
      log(logTails(run.logsDir, 12));
      reviveFailed(ctx);
      for (const name of PIPELINE_COMPONENTS) await run.sup.child(name)?.stop();
      for (const name of PIPELINE_COMPONENTS) run.sup.child(name)?.start();
      ctx.notes.push(`after the deadline (${err.component} behind) the test restarted every component`);
    }
  } finally {
    reviveFailed(ctx);
    generator?.start();
  }
  noteRestarts(ctx, restartsBefore);
  return { id: row.id, name: row.name, proof, faultSeconds, notes: ctx.notes, problems: ctx.problems };
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

test(
  'the fault matrix: every fault leaves every sink with no event lost or duplicated, the DLQ with only the bad rows',
  { timeout: 60 * 60_000 },
  async () => {
    const log = (l: string) => console.log(l);
    const started = new Date();
    const run = await startPipelineRun({
      label: 'faults',
      // The e2e proofs take 300–390.
      offsets: { from: 400, to: 490, step: 10 },
      env: {
        ...PROOF_ENV,
        // Every event of the run stays in the Redis window until the end (event_ts is near now).
        REDIS_AGGREGATION_WINDOW_MINUTES: '240',
      },
      generatorRate: RATE,
      log,
    });
    const expected = new ExpectedEvents();
    const rows: MatrixRow[] = [];
    try {
      run.sup.start();
      for (const row of ROWS) {
        const result = await runRow(run, expected, row, log);
        rows.push(result);
        log(`faults: ${formatRow(result)}`);
        for (const p of result.problems) log(`faults:   PROBLEM ${p}`);
      }
    } finally {
      const passed = rows.length === ROWS.length && rows.every((r) => r.problems.length === 0);
      const header = `Fault matrix, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${commit()}, generator ${RATE} events/s, fault durations × ${SCALE}, ${((Date.now() - started.getTime()) / 60_000).toFixed(1)} min`;
      log(['', header, '', formatTable(rows), '', ...TABLE_LEGEND, '', formatDetails(rows), ''].join('\n'));
      if (!passed) log(logTails(run.logsDir, 20, [...PIPELINE_COMPONENTS, 'generator']));
      // FAULT_KEEP_LOGS=1 keeps the components' logs of a run that passed too.
      await run.close(passed && process.env.FAULT_KEEP_LOGS !== '1');
    }
    assert.equal(rows.length, ROWS.length, 'every row ran');
    for (const r of rows) assert.deepEqual(r.problems, [], `row ${r.id} (${r.name})`);
  },
);
