/**
 * Notices a partition that has records to deliver and makes no progress, so a stuck sink shows in
 * its log at warn level instead of as silent lag. The runner calls `check` on its lag timer with
 * each lane's position; a partition is reported once when it has had lag, nothing delivering and
 * the same settled offset for `afterMs`, and again only after it moved.
 *
 * Retrying a failing write is progress of a kind (the delivery is running and logs its own
 * retries), so a partition with a batch in flight is never reported.
 */

export interface LaneProgress {
  partition: number;
  nextOffset: string;
  lag: number;
  /** A batch is being delivered (possibly retrying). */
  busy: boolean;
}

interface Seen {
  offset: string;
  since: number;
  reported: boolean;
}

export class StallWatch {
  private readonly seen = new Map<number, Seen>();

  constructor(
    private readonly afterMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Returns the partitions that have just become stalled (each reported once per stall). */
  check(lanes: Iterable<LaneProgress>): Array<LaneProgress & { stalledMs: number }> {
    const t = this.now();
    const out: Array<LaneProgress & { stalledMs: number }> = [];
    const present = new Set<number>();
    for (const lane of lanes) {
      present.add(lane.partition);
      const prev = this.seen.get(lane.partition);
      if (prev === undefined || prev.offset !== lane.nextOffset || lane.busy || lane.lag === 0) {
        this.seen.set(lane.partition, { offset: lane.nextOffset, since: t, reported: false });
        continue;
      }
      if (!prev.reported && t - prev.since >= this.afterMs) {
        prev.reported = true;
        out.push({ ...lane, stalledMs: t - prev.since });
      }
    }
    for (const p of [...this.seen.keys()]) if (!present.has(p)) this.seen.delete(p);
    return out;
  }

  /** The partitions stalled as of the last `check` (reported, and not moved since). */
  stalled(): number[] {
    return [...this.seen]
      .filter(([, s]) => s.reported)
      .map(([p]) => p)
      .sort((a, b) => a - b);
  }
}
