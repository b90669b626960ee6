import { errorMessage } from '../core/errors.js';
import type { AssignmentWatch } from '../kafka/assignment-watch.js';
import type { SinkRunnerState } from './sink-runner-state.js';
import { StallWatch } from './stall-watch.js';

/** A partition with lag, no batch in flight and no progress for this long (at least twice the
 *  batching wait, during which a partial batch legitimately waits) is reported (warn). */
const STALL_REPORT_MS = 30_000;

/**
 * A running sink runner's progress watch: every `opts.lagRefreshMs` (5 s) it reads the topic's
 * high watermarks into the lanes, updates the lag gauge and reports (warn, once per stall) a
 * partition that has lag and makes no progress (stall-watch.ts); `liveness` is what the heartbeat
 * publishes. The timer never holds the process open; `stop` ends it.
 */
export interface ProgressWatch {
  /**
   * Whether this runner makes progress (the heartbeat's `liveness`, which /health reads): not when
   * its consumer has silently lost its assignment (assignment-watch.ts), nor when a partition has
   * lag, nothing in flight and no progress (stall-watch.ts). An outage being retried is progress
   * of a kind: it shows as `waiting_since` (degraded), not here.
   */
  liveness(): { ok: boolean; reasons: string[] };
  stop(): void;
}

export function watchProgress(state: SinkRunnerState, assignment: AssignmentWatch | undefined): ProgressWatch {
  const { policy, log, topic, opts } = state.setup;
  const { lanes } = state;
  const stallAfterMs = Math.max(STALL_REPORT_MS, 2 * policy.maxWaitMs);
  const stalls = new StallWatch(stallAfterMs);
  const reportStalls = () => {
    const progress = [...lanes.values()].map((l) => ({
      partition: l.partition,
      nextOffset: l.nextOffset,
      lag: l.lag(),
      busy: l.busy,
    }));
    for (const s of stalls.check(progress)) {
      const lane = lanes.get(s.partition);
      log.warn(
        {
          partition: s.partition,
          nextOffset: s.nextOffset,
          lag: s.lag,
          stalledMs: s.stalledMs,
          queued: lane?.queue.size,
          paused: lane?.paused,
          closing: lane?.closing,
          resyncing: state.resyncing !== null,
          consumer: state.consumer?.describe(s.partition),
        },
        'partition has lag and makes no progress',
      );
    }
  };

  const liveness = (): { ok: boolean; reasons: string[] } => {
    const reasons: string[] = [];
    const status = assignment?.status();
    if (status && !status.ok && status.reason) reasons.push(status.reason);
    const stalled = stalls.stalled();
    if (stalled.length > 0)
      reasons.push(
        `partitions ${stalled.join(', ')} have lag and made no progress for ${Math.round(stallAfterMs / 1000)} s or more`,
      );
    return { ok: reasons.length === 0, reasons };
  };

  let refreshing = false;
  const refreshLag = async () => {
    if (refreshing || state.stopping) return;
    refreshing = true;
    try {
      for (const w of await state.admin.fetchTopicOffsets(topic)) {
        const lane = lanes.get(w.partition);
        if (lane) lane.highWatermark = w.high;
      }
      state.updateLag();
      reportStalls();
    } catch (err) {
      log.debug({ err: errorMessage(err) }, 'lag refresh failed');
    } finally {
      refreshing = false;
    }
  };
  const lagTimer = setInterval(() => void refreshLag(), opts.lagRefreshMs ?? 5000);
  lagTimer.unref();
  return { liveness, stop: () => clearInterval(lagTimer) };
}
