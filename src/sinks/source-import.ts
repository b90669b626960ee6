import type { ContentRow } from '../core/types.js';

/**
 * An optional capability of a sink, for the direct backfill (`engage process --mode backfill
 * --direct`): importing a page of `engagement_events` rows as PostgreSQL wrote them (a CSV file
 * of COPY's output), enriching them itself with the stream's transform expressed in its own query
 * language, instead of receiving one enriched event per row from the JS thread. The DuckDB
 * warehouse has it (docs/warehouse.md "Bulk import"); a sink without it gets the page the
 * ordinary way.
 *
 * Contract of `importSourcePage`:
 * - the result must be exactly what `write` would store for the events `enrichEvent` makes of the
 *   same rows (origin `backfill`, source and processing time = `nowMs`), each record's Kafka
 *   partition and offset being DIRECT_PARTITION / DIRECT_OFFSET;
 * - all or nothing: either every row of the file is valid for the transform AND for the sink's
 *   `check`, and the page is written in one atomic step with `nextOffset = deliveredBefore + rows`
 *   stored under (`topic`, DIRECT_PARTITION) — resolves `{ kind: 'written' }` — or nothing is
 *   written and it resolves `{ kind: 'declined' }`: the caller then reads the same rows again and
 *   delivers them the ordinary way, which rejects or parks the bad ones with their reason. The
 *   rules may be stricter than the transform's (a valid row may cause a decline), never looser;
 * - events already stored, by (event_id, event_ts), are skipped (a page imported again adds nothing);
 * - throws (a PipelineError) for a failure that is not the rows' fault, as `write` does.
 */

/**
 * The CSV columns, in order, that COPY writes and `importSourcePage` reads (header-less, RFC 4180
 * quoting, NULL as an unquoted empty field). The keyset (event_ts, id) comes last: neither is ever
 * quoted, so a file's last bytes name its last row whatever the fields before them hold.
 */
export const SOURCE_CSV_COLUMNS = [
  'content_id',
  'user_id',
  'event_type',
  'duration_ms',
  'device',
  'raw_payload',
  'event_ts',
  'id',
] as const;

export interface SourcePage {
  /** Absolute path of the CSV file; the caller deletes it once the call has settled. */
  file: string;
  /** The rows in it, as its writer counted them: a file that reads as another count is declined. */
  rows: number;
  /** The catalogue the rows are enriched with (the backfill reads it once per run). */
  content: readonly ContentRow[];
  /** The moment of enrichment: source_ts_ms, processed_ts_ms, and the bound on future event times. */
  nowMs: number;
  /** Where the write's position is stored, as for the direct backfill's ordinary writes. */
  topic: string;
  deliveredBefore: number;
}

export type SourceImportResult =
  { kind: 'written'; rows: number; inserted: number } | { kind: 'declined'; rows: number };

export interface SourceImporter {
  importSourcePage(page: SourcePage): Promise<SourceImportResult>;
}

export function isSourceImporter<T extends object>(sink: T): sink is T & SourceImporter {
  return typeof (sink as Partial<SourceImporter>).importSourcePage === 'function';
}
