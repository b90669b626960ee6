import type { SinkRunnerState } from './sink-runner-state.js';

/**
 * The resync after state loss (SINK_STATE_LOST: a Redis wipe, a dropped table): waits for the
 * batches in flight, asks the sink where each assigned partition resumes, and seeks every lane
 * there. Records below a lane's settled position are marked re-read (written again, not observed
 * as freshness). One resync at a time: a second report while one runs joins it. While it runs no
 * batch starts (`state.resyncing`, read by the lanes' `canStart`); once it ends every lane is
 * kicked. A failure to read the positions is fatal (`state.fail`).
 */
export function resync(state: SinkRunnerState): Promise<void> {
  if (state.resyncing) return state.resyncing;
  const { stats, metrics, log } = state.setup;
  const { lanes } = state;
  stats.stateLost++;
  metrics.stateLost.inc();
  log.warn('the sink reports its state lost: re-positioning every assigned partition from the sink');
  state.resyncing = (async () => {
    await Promise.all([...lanes.values()].map((l) => l.idle()));
    const parts = [...lanes.keys()];
    const start = await state.positions(parts);
    for (const [p, offset] of start.offsets) {
      const lane = lanes.get(p);
      if (!lane || lane.closing) continue;
      const settled = BigInt(lane.nextOffset);
      if (settled > lane.rereadBelow) lane.rereadBelow = settled;
      state.seekLane(lane, offset);
    }
    log.info({ offsets: Object.fromEntries(start.offsets) }, 're-positioned after state loss');
  })()
    .catch((err: unknown) => state.fail(err))
    .finally(() => {
      state.resyncing = null;
      for (const lane of lanes.values()) lane.kick();
    });
  return state.resyncing;
}
