import { performance } from 'node:perf_hooks';

/**
 * Notices a consumer whose fetching is stuck while the broker holds committed records past its
 * position. Seen once after a broker restart on a loaded machine (fault matrix, 2026-12-07 21:30
 * UTC; cause not found): a processor fetched nothing for 2.7 minutes and reported lag 0 — its lag
 * comes from librdkafka's cached high watermarks, which had not moved either — while the CDC had
 * committed new records to its input topic; a fresh client (the process restarted) read them at
 * once. Pure: its probe (fetch-probe.ts) asks the broker and feeds it.
 *
 * Contract:
 * - `check(partitions)` is given every partition assigned to the consumer, each with its position
 *   (the next offset it reads), the broker's last stable offset (ListOffsets "latest" under
 *   read_committed), whether it is busy (a batch running, messages held, paused or held by the
 *   owner, being re-positioned: then waiting is not the fetcher's fault) and when a message of it
 *   was last fetched (or it was assigned). A null position or stable end is no
 *   evidence (unknown, or not asked because the partition fetched lately).
 * - A partition is stalled once it has been, at checks at least `afterMs` apart and at every check
 *   between: not busy, with a stable end more than 1 past its position, the same position and
 *   nothing fetched since the first of them. 1: under read_committed librdkafka's position passes
 *   every transaction marker and aborted record it fetched (the marker's op moves it when a consume
 *   call serves it), so a caught-up partition's position equals the stable end, and it is 1 short
 *   only between fetching a transaction's last record and the consume call serving the marker.
 * - `check` returns the partitions that have just become stalled: each stall is reported once, and
 *   a partition is reported again only after a check found it moved (another position, a message
 *   fetched, busy, caught up or unknown) and it then stalled anew. A partition left out is forgotten.
 */

/** One assigned partition as the probe sees it at a check. */
export interface PartitionFetch {
  partition: number;
  /** The next offset the consumer reads; null when unknown. */
  position: number | null;
  /** The broker's last stable offset; null when unknown or not asked. */
  stableEnd: number | null;
  busy: boolean;
  /** When a message of it was last fetched, or it was assigned (the checks' clock). */
  fetchedAt: number;
}

export interface FetchStall {
  partition: number;
  position: number;
  stableEnd: number;
  /** Since the first check that found it stalled. */
  stalledMs: number;
  /** Since a message of it was last fetched (or it was assigned). */
  idleMs: number;
}

interface Seen {
  position: number;
  since: number;
  reported: FetchStall | null;
}

/** How long the condition must hold before a partition is stalled (default of `afterMs`). */
export const FETCH_STALL_MS = 60_000;

export class FetchStallWatch {
  private readonly seen = new Map<number, Seen>();

  constructor(
    private readonly afterMs: number = FETCH_STALL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Returns the partitions that have just become stalled (each reported once per stall). */
  check(partitions: Iterable<PartitionFetch>): FetchStall[] {
    const t = this.now();
    const out: FetchStall[] = [];
    const present = new Set<number>();
    for (const p of partitions) {
      present.add(p.partition);
      const { position, stableEnd } = p;
      if (p.busy || position === null || stableEnd === null || stableEnd <= position + 1) {
        this.seen.delete(p.partition);
        continue;
      }
      const prev = this.seen.get(p.partition);
      if (prev === undefined || prev.position !== position || p.fetchedAt > prev.since) {
        this.seen.set(p.partition, { position, since: t, reported: null });
        continue;
      }
      const stalledMs = t - prev.since;
      if (prev.reported === null && stalledMs >= this.afterMs) {
        prev.reported = { partition: p.partition, position, stableEnd, stalledMs, idleMs: t - p.fetchedAt };
        out.push(prev.reported);
      }
    }
    for (const p of [...this.seen.keys()]) if (!present.has(p)) this.seen.delete(p);
    return out;
  }

  /** The partitions stalled as of the last `check` (reported, and not moved since), with the figures of their report. */
  stalled(): FetchStall[] {
    return [...this.seen.values()]
      .flatMap((s) => (s.reported ? [s.reported] : []))
      .sort((a, b) => a.partition - b.partition);
  }
}
