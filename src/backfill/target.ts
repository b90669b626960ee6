import type { PipelineError } from '../core/errors.js';
import type { EngagementEventRow, EnrichedEvent } from '../core/types.js';

/**
 * Where a backfill delivers its pages: the enriched topic (topic-target.ts, every sink takes the
 * events from there) or named sinks written in this process (direct-target.ts, `--direct`).
 *
 * Contract: `deliver` is called once per page, in page order, with at most `maxInFlight` calls
 * outstanding; it resolves only when every event of the page is durably in its destination and
 * every rejected row is confirmed in the DLQ, and throws otherwise. The backfill saves its
 * progress after a page's `deliver` resolves, so a page may be delivered again after a crash:
 * every destination must absorb a repeated event (the sinks dedupe on the event id).
 */

export interface BackfillPage {
  /** Rows the transform accepted, in the reader's (event_ts, id) order. */
  events: EnrichedEvent[];
  /** Rows the transform rejected, with the reason: they go to the DLQ (stage `backfill`). */
  rejected: Array<{ row: EngagementEventRow; error: PipelineError }>;
  /** Events of this range delivered before this page (by this run and any run it resumes). */
  deliveredBefore: number;
}

export interface BackfillTarget {
  /** For the progress key and logs: `topic`, or `direct:<sink>,<sink>`. */
  readonly name: string;
  /** Pages that may be in delivery at once (the backfill reads and enriches the next meanwhile). */
  readonly maxInFlight: number;
  deliver(page: BackfillPage): Promise<void>;
  /** Releases connections; called once, after the last `deliver` has settled. */
  close(): Promise<void>;
}

/** The DLQ entry's source position of a row the transform rejected: the table and the row id. */
export const SOURCE_TOPIC = 'postgres:engagement_events';

/** The original bytes of a source row, as its DLQ entry carries them. */
export function rowBytes(row: EngagementEventRow): Buffer {
  return Buffer.from(JSON.stringify(row));
}
