import type { PipelineRun } from '../e2e/pipeline-run.js';
import { sleep, waitFor } from '../helpers/wait.js';
import type { ExpectedEvents } from './expected-events.js';
import type { SinkProof } from './sink-proof.js';

/**
 * What a row of the fault matrix gets: the running pipeline, the expectation, where to write what
 * it saw. A row injects its fault while the generator loads the pipeline; `inject` returns once the
 * fault is over (the service back, the lock released); the matrix then stops the load, waits for
 * the sinks and proves them. `problems` fail the row; `notes` are printed beside it.
 */

export interface FaultContext {
  run: PipelineRun;
  expected: ExpectedEvents;
  log: (line: string) => void;
  /** Multiplies each fault's own duration: 1 in the matrix as the docs record it, less while developing. */
  scale: number;
  notes: string[];
  problems: string[];
}

export interface FaultRow {
  id: number;
  name: string;
  /** How the fault is injected, one line (the docs' table says it too). */
  how: string;
  inject(ctx: FaultContext): Promise<void>;
  /** Runs while the warehouse sink is stopped for the proof (the DuckDB file is readable then). */
  whileWarehouseStopped?(ctx: FaultContext): Promise<void>;
  /** Checks of its own after the proof (the proof's counts are checked for every row). */
  verify?(ctx: FaultContext, proof: SinkProof): Promise<void>;
}

/** A fault's own duration (`ms` × the scale): an outage lasts this long; it synchronises nothing. */
export function faultDuration(ctx: FaultContext, ms: number): Promise<void> {
  return sleep(Math.max(1000, Math.round(ms * ctx.scale)));
}

/** Waits until the external receiver takes events it had not seen: the whole pipeline moves again. */
export async function waitFlowing(ctx: FaultContext, what: string, timeoutMs = 180_000): Promise<void> {
  const before = ctx.run.receiver.stats().events_unique;
  await waitFor(
    `new events at the receiver after ${what}`,
    () => ctx.run.receiver.stats().events_unique > before + 50,
    { timeoutMs, everyMs: 250 },
  );
}

/** The component's pid once it runs again under the supervisor with a pid other than `oldPid`. */
export async function waitRestarted(
  ctx: FaultContext,
  name: string,
  oldPid: number | undefined,
  timeoutMs = 120_000,
): Promise<number> {
  return waitFor(
    `${name} to run again under a new pid (was ${oldPid ?? '-'})`,
    () => {
      const s = ctx.run.sup.child(name)?.status();
      return s?.state === 'running' && s.pid !== undefined && s.pid !== oldPid ? s.pid : undefined;
    },
    { timeoutMs, everyMs: 50 },
  );
}
