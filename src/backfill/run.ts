import pg from 'pg';
import type { Config } from '../config/load.js';
import type { Logger } from '../core/logger.js';
import { configuredPseudonymiser } from '../core/pseudonym.js';
import type { ContentRow } from '../core/types.js';
import { ProgressBar } from './progress-bar.js';
import { ensureProgressTable, loadProgress, saveProgress } from './progress-store.js';
import { parseDateRange } from './range.js';
import { copyPages, rowPages, type Delivered, type PageFlow, type ReadPage } from './page-flow.js';
import { bulkColumnSql } from './pseudonym-sql.js';
import { SOURCE_COLUMN_SQL, countRange, estimatedRangeRows, type Cursor } from './reader.js';
import { DEFAULT_PAGE_ROWS, type BackfillTarget } from './target.js';

/**
 * `engage process --mode backfill --start-date D --end-date D [--direct sinks]`: re-reads the
 * range from PostgreSQL, enriches each row with the stream's pure transform, and delivers each
 * page to its target: by default the enriched topic (origin `backfill`), from where every sink
 * takes it as usual (topic-target.ts); with `--direct`, the named sinks written in this process
 * (direct-target.ts). Rows the transform rejects go to the DLQ with the reason. When every direct
 * sink imports source rows itself (the DuckDB warehouse), pages go to it as PostgreSQL's COPY
 * writes them instead, the PII_FIELDS columns pseudonymised by PostgreSQL (pseudonym-sql.ts), and
 * only a page it declines is enriched here (page-flow.ts; `bulk`).
 * Idempotent (a re-run, or a range the stream already delivered, changes no count: every
 * destination dedupes on (event_id, event_ts): src/core/event-identity.ts) and resumable: progress is saved after each delivered
 * page, in page order, under a key naming the range and the target, so an interrupted direct run
 * is never resumed by a topic run (whose sinks would miss the first part) or the reverse.
 */

export interface BackfillOptions {
  startDate: string;
  endDate: string;
  /** Rows per page; default: the target's `pageRows`, else DEFAULT_PAGE_ROWS. */
  pageSize?: number;
  /** Ignore saved progress and start the range from its beginning. */
  restart?: boolean;
  progress?: boolean;
  signal?: AbortSignal;
  /** Sinks to write directly (`--direct`); absent or empty = through the enriched topic. */
  direct?: string[];
  /** With `direct`: let sinks that can import pages as COPY writes them do so (default true; `--no-bulk-import`). */
  bulk?: boolean;
}

export interface BackfillResult {
  range: string;
  resumed: boolean;
  read: number;
  delivered: number;
  /** Rows the transform rejected, in the DLQ (stage `backfill`). */
  dlq: number;
  /** Events a directly written sink refused, in the DLQ under its stage (`sink:<name>`); empty
   *  through the topic, where each sink's own runner parks what it refuses. */
  parked: Record<string, number>;
  /** Pages delivered, and of them those the sinks imported as COPY wrote them (`--direct` into DuckDB). */
  pages: number;
  importedPages: number;
  seconds: number;
  rate: number;
}

const CONTENT_COLUMNS = ['id', 'slug', 'title', 'content_type', 'length_seconds', 'publish_ts'];
const CONTENT_SQL = `SELECT id::text AS id, slug, title, content_type, length_seconds,
  to_char(publish_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS publish_ts FROM content`;

export async function runBackfill(config: Config, opts: BackfillOptions, log: Logger): Promise<BackfillResult> {
  const range = parseDateRange(opts.startDate, opts.endDate);
  // The rows read here leave PostgreSQL as the CDC's do: the tagged columns pseudonymised (or refused without a key).
  const pii = configuredPseudonymiser(config, 'the backfill');
  for (const f of config.piiFields) {
    const read =
      f.table === 'engagement_events' ? Object.keys(SOURCE_COLUMN_SQL) : f.table === 'content' ? CONTENT_COLUMNS : [];
    if (!read.includes(f.column))
      log.warn(
        { field: `${f.table}.${f.column}` },
        'PII_FIELDS names a column the backfill does not read: nothing to protect there',
      );
  }
  const db = new pg.Client({ connectionString: config.databaseUrl });
  await db.connect();
  let target: BackfillTarget | undefined;
  let flow: PageFlow | undefined;
  try {
    target = await openTarget(config, opts, range.key, log);
    const pageSize = opts.pageSize ?? target.pageRows ?? DEFAULT_PAGE_ROWS;
    // The topic target keeps the bare range key (what earlier versions saved); others add their name.
    const key = target.name === 'topic' ? range.key : `${range.key}|${target.name}`;
    await ensureProgressTable(db);
    const saved = opts.restart ? null : await loadProgress(db, key);
    const resumed = Boolean(saved && !saved.done && saved.cursor);
    let cursor: Cursor | null = resumed ? (saved?.cursor ?? null) : null;
    let delivered = resumed ? (saved?.delivered ?? 0) : 0;
    if (saved?.done && !opts.restart)
      log.info({ range: key }, 'range was backfilled before; re-sending it (sinks dedupe by event id and event_ts)');
    if (resumed) log.info({ range: key, after: cursor, delivered }, 'resuming an interrupted backfill');

    const content = (await db.query<ContentRow>(CONTENT_SQL)).rows;
    for (const row of content) pii.protectRow('content', row as unknown as Record<string, unknown>);
    const total = await countRange(db, range, cursor);
    const estimate = await estimatedRangeRows(db, range);
    if (total > 10 * pageSize && estimate * 10 < total) {
      log.warn(
        { estimate, rows: total },
        'PostgreSQL estimates the range at a tenth of its rows or less: its statistics of engagement_events are older than the data, so every page may sort the whole remaining range; run ANALYZE engagement_events (autovacuum will, in time)',
      );
    }
    const bar =
      opts.progress === false
        ? undefined
        : new ProgressBar(`backfill ${range.key}${target.name === 'topic' ? '' : ` (${target.name})`}`, total);
    const flowCtx = { db, range, pageSize, content, target, pii, log };
    // The bulk import hands PostgreSQL's CSV to the sink: the tagged columns are pseudonymised in
    // the COPY's query, or, where that cannot be, pages go as rows (pseudonymised in startRows).
    let bulk = target.deliverSource && opts.bulk !== false ? await bulkColumnSql(db, pii) : undefined;
    if (bulk && 'refused' in bulk) {
      log.info(`${bulk.refused}: the bulk import is off, pages are pseudonymised and delivered as rows`);
      bulk = undefined;
    }
    const source = bulk ? await copyPages(flowCtx, bulk.columns) : rowPages(flowCtx);
    flow = source;
    const t0 = Date.now();
    let read = 0;
    let dlq = 0;
    let pages = 0;
    let importedPages = 0;
    const parked: Record<string, number> = {};
    let queued = delivered;
    // Pages in delivery, oldest first. While they are delivered the next page is read (PostgreSQL)
    // and enriched (this thread); progress advances only as each is confirmed, in page order.
    const inFlight: Array<{ done: Promise<Delivered>; last: Cursor }> = [];
    const settleOldest = async () => {
      const f = inFlight.shift();
      if (!f) return;
      const d = await f.done;
      for (const [stage, n] of Object.entries(d.report.parked)) parked[stage] = (parked[stage] ?? 0) + n;
      read += d.rows;
      delivered += d.events;
      dlq += d.rejected;
      pages += 1;
      if (d.imported) importedPages += 1;
      cursor = f.last;
      await saveProgress(db, key, { cursor, done: false, delivered });
      bar?.update(read);
    };
    let next: Promise<ReadPage | null> | null = source.read(cursor);
    try {
      for (;;) {
        if (opts.signal?.aborted) break;
        const page = await (next ?? source.read(cursor));
        next = null;
        if (!page) break;
        next = source.read(page.last);
        next.catch(() => undefined); // awaited next turn; a failure there is thrown then
        const { events, done } = await page.start(queued);
        queued += events;
        done.catch(() => undefined); // awaited in order by settleOldest
        inFlight.push({ done, last: page.last });
        while (inFlight.length >= target.maxInFlight) await settleOldest();
      }
      while (inFlight.length > 0) await settleOldest();
    } catch (err) {
      // A delivery cut short by a stop is an interruption (resumed next run), not a failure.
      if (!opts.signal?.aborted) throw err;
    } finally {
      await Promise.allSettled([...inFlight.map((f) => f.done), next ?? Promise.resolve()]);
    }
    const finished = !opts.signal?.aborted;
    if (finished) await saveProgress(db, key, { cursor, done: true, delivered });
    bar?.finish(read);
    const seconds = (Date.now() - t0) / 1000;
    if (Object.keys(parked).length > 0)
      log.warn(
        { parked },
        'sinks refused some events: they are in the DLQ (`engage dlq list`), to replay once the cause is fixed',
      );
    const result: BackfillResult = {
      range: range.key,
      resumed,
      read,
      delivered,
      dlq,
      parked,
      pages,
      importedPages,
      seconds,
      rate: read / Math.max(seconds, 0.001),
    };
    log.info(
      { ...result, target: target.name },
      finished ? 'backfill finished' : 'backfill interrupted; run it again to resume',
    );
    return result;
  } finally {
    await flow?.close().catch(() => undefined);
    await target?.close().catch(() => undefined);
    await db.end().catch(() => undefined);
  }
}

async function openTarget(
  config: Config,
  opts: BackfillOptions,
  rangeKey: string,
  log: Logger,
): Promise<BackfillTarget> {
  if (!opts.direct || opts.direct.length === 0) {
    const { openTopicTarget } = await import('./topic-target.js');
    return openTopicTarget(config);
  }
  const [{ directFactories, openDirectTarget }, { getSinkFactory }] = await Promise.all([
    import('./direct-target.js'),
    import('../sinks/registry.js'),
  ]);
  return openDirectTarget(config, directFactories(opts.direct, getSinkFactory), rangeKey, log, {
    bulk: opts.bulk !== false,
    signal: opts.signal,
  });
}
