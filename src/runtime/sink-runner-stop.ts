import { errorMessage } from '../core/errors.js';
import type { SinkRunnerState } from './sink-runner-state.js';

const DRAIN_GRACE_MS = 10_000;

/** What a stop ends besides the lanes, in order: the watches, then the resources in reverse. */
export interface StopParts {
  /** Stops the timers (progress watch, assignment watch) first: nothing is refreshed while draining. */
  stopWatches(): void;
  /** Closers in the order they were acquired (run in reverse: consumer first, sink last). */
  cleanup: Array<() => Promise<void>>;
  resolveDone(): void;
}

/**
 * The sink runner's stop: sets `stopping` (the consumer's batches are no longer queued), waits
 * for a resync in progress, drains every lane (what is queued is written), flushes the settled
 * offsets to the group, then closes consumer, DLQ writer, admin, health poll and sink (an error
 * closing one is logged, the rest still closed) and resolves `done`. The drain lasts at most
 * DRAIN_GRACE_MS: past it, batches still failing (the system down) are abandoned unsettled — not
 * committed, so the next run reads them again. Idempotent: every call returns the same promise.
 */
export function stopper(state: SinkRunnerState, parts: StopParts): () => Promise<void> {
  const { log, stats } = state.setup;
  let stopped: Promise<void> | undefined;
  return (): Promise<void> => {
    stopped ??= (async () => {
      state.stopping = true;
      setTimeout(() => state.drainOver.abort(new Error('drain grace period over')), DRAIN_GRACE_MS).unref();
      parts.stopWatches();
      if (state.resyncing) await state.resyncing;
      for (const lane of state.lanes.values()) {
        lane.draining = true;
        lane.kick();
      }
      await Promise.all([...state.lanes.values()].map((l) => l.idle()));
      await state.commits.flush();
      for (const c of parts.cleanup.reverse()) {
        await c().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'error while closing'));
      }
      state.updateLag();
      log.info(stats.summary(), 'sink runner stopped');
      parts.resolveDone();
    })();
    return stopped;
  };
}
