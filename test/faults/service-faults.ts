import { stopPrivatePostgres } from '../../src/stack/postgres.js';
import { stackUp } from '../../src/stack/stack.js';
import { readStackState } from '../../src/config/stack-state.js';
import { waitFor } from '../helpers/wait.js';
import { restartService } from '../e2e/pipeline-run.js';
import { faultDuration, waitFlowing, type FaultContext, type FaultRow } from './fault-context.js';

/**
 * Rows 1–6 of the fault matrix: the services the pipeline depends on fail under it. Each acts on
 * the run's own private stack only (its state file names the pids), never on a shared one.
 */

function servicePid(ctx: FaultContext, name: 'kafka' | 'redis' | 'postgres'): number {
  const pid = readStackState(ctx.run.stackDir)?.services[name]?.pid;
  if (!pid) throw new Error(`the run's stack has no pid for ${name}: the matrix only faults services it started`);
  return pid;
}

const log = (ctx: FaultContext) => (line: string) => ctx.log(`  ${line}`);

export const brokerRestarts: FaultRow = {
  id: 1,
  name: 'broker restarted 5 times',
  how: 'SIGTERM to the broker (pid from the stack state file), started again at once; the next restart once events flow to the receiver again',
  async inject(ctx) {
    for (let i = 1; i <= 5; i++) {
      const seconds = await restartService(ctx.run.base, ctx.run.stackDir, 'kafka', log(ctx));
      ctx.notes.push(`restart ${i}: ${seconds.toFixed(0)} s`);
      if (i < 5) await waitFlowing(ctx, `broker restart ${i}`);
    }
  },
};

export const brokerDown: FaultRow = {
  id: 2,
  name: 'broker down 60 s',
  how: 'SIGTERM to the broker, 60 s without it, started again',
  async inject(ctx) {
    const seconds = await restartService(ctx.run.base, ctx.run.stackDir, 'kafka', log(ctx), 60_000 * ctx.scale);
    ctx.notes.push(`away ${seconds.toFixed(0)} s`);
  },
};

export const brokerFrozen: FaultRow = {
  id: 3,
  name: 'broker SIGSTOP 30 s, then SIGCONT',
  how: 'SIGSTOP to the broker JVM, SIGCONT 30 s later (connections stay open, nothing answers)',
  async inject(ctx) {
    const pid = servicePid(ctx, 'kafka');
    process.kill(pid, 'SIGSTOP');
    try {
      await faultDuration(ctx, 30_000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  },
};

export const redisDown: FaultRow = {
  id: 4,
  name: 'Redis down 60 s',
  how: 'SIGTERM to redis-server, 60 s without it, started again (no persistence: it comes back empty)',
  async inject(ctx) {
    const seconds = await restartService(ctx.run.base, ctx.run.stackDir, 'redis', log(ctx), 60_000 * ctx.scale);
    ctx.notes.push(`away ${seconds.toFixed(0)} s, back empty`);
  },
};

export const postgresRestart: FaultRow = {
  id: 5,
  name: 'PostgreSQL restarted',
  how: '`pg_ctl stop -m fast`, then started again by `stack up`',
  async inject(ctx) {
    const pg = readStackState(ctx.run.stackDir)?.services.postgres;
    if (!pg?.dataDir) throw new Error("the run's stack has no PostgreSQL of its own");
    const t0 = Date.now();
    await stopPrivatePostgres(pg);
    await stackUp(ctx.run.base, { topics: false });
    ctx.notes.push(`away ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  },
};

/** Bursts of answers the receiver gives after its outage: status, Retry-After, how many requests. */
const BURSTS = [
  { status: 429, retryAfter: 1, requests: 20 },
  { status: 503, retryAfter: null, requests: 20 },
  { status: 429, retryAfter: 2, requests: 10 },
  { status: 503, retryAfter: 1, requests: 10 },
] as const;

/**
 * How long the sink may take to spend a burst. Past the circuit's 5 failures every request is a
 * half-open probe, one per cool-down (5 s) at the soonest, made when a waiting batch retries: its
 * wait after the n-th failed call is up to min(30 s, 500 ms × 2ⁿ⁻¹) (docs/external.md). So a burst
 * of 20 × 503 takes 15 probes, up to ~30 s apart: a fixed 240 s was met in the run of 2026-12-07
 * 08:50 and missed in that of 21:01 (the fresh-clone CI running beside it), with nothing lost.
 */
function burstDeadlineMs(requests: number): number {
  return 60_000 + requests * 30_000;
}

export const receiverOutage: FaultRow = {
  id: 6,
  name: 'external receiver down 5 min, then 429 and 503 in bursts',
  how: 'receiver.control: `down` (connections dropped) for 5 min, then `failNext` bursts of 429 (Retry-After 1–2 s) and 503, each burst until the sink has spent it',
  async inject(ctx) {
    const { receiver } = ctx.run;
    receiver.control({ down: true });
    try {
      await faultDuration(ctx, 300_000);
    } finally {
      receiver.control({ down: false });
    }
    let answered = 0;
    const took: string[] = [];
    for (const b of BURSTS) {
      const before = receiver.stats().failures_injected;
      const started = Date.now();
      receiver.control({ failNext: b.requests, status: b.status, retryAfter: b.retryAfter });
      await waitFor(
        `the external sink to spend a burst of ${b.requests} × ${b.status}`,
        () => receiver.control().failNext === 0,
        { timeoutMs: burstDeadlineMs(b.requests), everyMs: 100 },
      );
      answered += receiver.stats().failures_injected - before;
      took.push(`${b.requests} × ${b.status} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
    receiver.control({ status: 503, retryAfter: null, failNext: 0 });
    ctx.notes.push(`${answered} requests answered 429/503 (bursts: ${took.join(', ')})`);
  },
};

export const SERVICE_FAULTS: readonly FaultRow[] = [
  brokerRestarts,
  brokerDown,
  brokerFrozen,
  redisDown,
  postgresRestart,
  receiverOutage,
];
