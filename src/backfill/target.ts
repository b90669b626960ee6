import type { PipelineError } from '../core/errors.js';
import type { EngagementEventRow, EnrichedEvent } from '../core/types.js';
import type { DlqOrigin } from '../runtime/sink-decode.js';
import type { SourcePage } from '../sinks/source-import.js';

/**
 * Where a backfill delivers its pages: the enriched topic (topic-target.ts, every sink takes the
 * events from there) or named sinks written in this process (direct-target.ts, `--direct`).
 *
 * Contract: `deliver` is called once per page, in page order, with at most `maxInFlight` calls
 * outstanding; it resolves only when every event of the page is durably in its destination (or,
 * refused there, confirmed in the DLQ) and every rejected row is confirmed in the DLQ, and throws
 * otherwise. It resolves with the events each destination refused and parked (PageReport). The
 * backfill saves its progress after a page's `deliver` resolves, so a page may be delivered again
 * after a crash: every destination must absorb a repeated event (the sinks dedupe on (event_id, event_ts)).
 */

export interface BackfillPage {
  /** Rows the transform accepted, in the reader's (event_ts, id) order. */
  events: EnrichedEvent[];
  /** Rows the transform rejected, with the reason: they go to the DLQ (stage `backfill`). */
  rejected: Array<{ row: EngagementEventRow; error: PipelineError }>;
  /** Events of this range delivered before this page (by this run and any run it resumes). */
  deliveredBefore: number;
}

/** What became of a delivered page's events besides being stored. */
export interface PageReport {
  /** Events a destination refused (its check, or a write that could never succeed), parked in the
   *  DLQ under its stage (`sink:<name>`); stages that parked nothing are left out. */
  parked: Record<string, number>;
}

/** A page as PostgreSQL's COPY wrote it (copy-reader.ts), for a target that imports source rows; the target names the position's topic. */
export type SourceFilePage = Omit<SourcePage, 'topic'>;

export interface BackfillTarget {
  /** For the progress key and logs: `topic`, or `direct:<sink>,<sink>`. */
  readonly name: string;
  /** Pages that may be in delivery at once (the backfill reads and enriches the next meanwhile). */
  readonly maxInFlight: number;
  /** The page size it writes best, used when the run names none; absent = DEFAULT_PAGE_ROWS. */
  readonly pageRows?: number;
  deliver(page: BackfillPage): Promise<PageReport>;
  /**
   * Present when every destination imports source rows itself (src/sinks/source-import.ts): the
   * same contract as `deliver` for a page in a CSV file, resolving with its rows. Resolves null
   * when a destination declined the page (a row the transform or a sink might refuse): the caller
   * then reads the same rows and calls `deliver`, which rejects or parks them with their reason.
   */
  deliverSource?(page: SourceFilePage): Promise<(PageReport & { rows: number }) | null>;
  /** Releases connections; called once, after the last `deliver` has settled. */
  close(): Promise<void>;
}

/** Rows per page read from PostgreSQL when neither the run nor its target names a size. */
export const DEFAULT_PAGE_ROWS = 20_000;

/** The DLQ entry's source position of a row the transform rejected: the table and the row id. */
export const SOURCE_TOPIC = 'postgres:engagement_events';

/** Where a rejected source row's DLQ entry says it came from: the table, the row id, its bytes. */
export function rejectedRowOrigin(row: EngagementEventRow): DlqOrigin {
  return {
    topic: SOURCE_TOPIC,
    partition: 0,
    offset: row.id,
    key: JSON.stringify({ id: row.id }),
    value: Buffer.from(JSON.stringify(row)),
    priorAttempts: 0,
    replay: false,
  };
}
