import pg from 'pg';
import type { Config } from '../config/load.js';
import type { Logger } from '../core/logger.js';
import type { ContentRow } from '../core/types.js';
import { enrichEvent } from '../processor/enrich.js';
import { ProgressBar } from './progress-bar.js';
import { ensureProgressTable, loadProgress, saveProgress } from './progress-store.js';
import { parseDateRange } from './range.js';
import { countRange, estimatedRangeRows, readPage, type Cursor, type Page } from './reader.js';
import { DEFAULT_PAGE_ROWS, type BackfillPage, type BackfillTarget, type PageReport } from './target.js';

/**
 * `engage process --mode backfill --start-date D --end-date D [--direct sinks]`: re-reads the
 * range from PostgreSQL, enriches each row with the stream's pure transform, and delivers each
 * page to its target: by default the enriched topic (origin `backfill`), from where every sink
 * takes it as usual (topic-target.ts); with `--direct`, the named sinks written in this process
 * (direct-target.ts). Rows the transform rejects go to the DLQ with the reason.
 * Idempotent (a re-run, or a range the stream already delivered, changes no count: every
 * destination dedupes on the event id) and resumable: progress is saved after each delivered
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
  seconds: number;
  rate: number;
}

const CONTENT_SQL = `SELECT id::text AS id, slug, title, content_type, length_seconds,
  to_char(publish_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS publish_ts FROM content`;

export async function runBackfill(config: Config, opts: BackfillOptions, log: Logger): Promise<BackfillResult> {
  const range = parseDateRange(opts.startDate, opts.endDate);
  const db = new pg.Client({ connectionString: config.databaseUrl });
  await db.connect();
  let target: BackfillTarget | undefined;
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
    if (saved?.done && !opts.restart) log.info({ range: key }, 'range was backfilled before; re-sending it (sinks dedupe by event id)');
    if (resumed) log.info({ range: key, after: cursor, delivered }, 'resuming an interrupted backfill');

    const content = new Map((await db.query<ContentRow>(CONTENT_SQL)).rows.map((c) => [c.id, c]));
    const total = await countRange(db, range, cursor);
    const estimate = await estimatedRangeRows(db, range);
    if (total > 10 * pageSize && estimate * 10 < total) {
      log.warn({ estimate, rows: total }, 'PostgreSQL estimates the range at a tenth of its rows or less: its statistics of engagement_events are older than the data, so every page may sort the whole remaining range; run ANALYZE engagement_events (autovacuum will, in time)');
    }
    const bar = opts.progress === false ? undefined : new ProgressBar(`backfill ${range.key}${target.name === 'topic' ? '' : ` (${target.name})`}`, total);
    const t0 = Date.now();
    let read = 0;
    let dlq = 0;
    const parked: Record<string, number> = {};
    let queued = delivered;
    // Pages in delivery, oldest first. While they are delivered the next page is read (PostgreSQL)
    // and enriched (this thread); progress advances only as each is confirmed, in page order.
    const inFlight: Array<{ done: Promise<PageReport>; rows: number; events: number; rejected: number; last: Cursor | null }> = [];
    const settleOldest = async () => {
      const f = inFlight.shift();
      if (!f) return;
      const report = await f.done;
      for (const [stage, n] of Object.entries(report.parked)) parked[stage] = (parked[stage] ?? 0) + n;
      read += f.rows;
      delivered += f.events;
      dlq += f.rejected;
      cursor = f.last;
      await saveProgress(db, key, { cursor, done: false, delivered });
      bar?.update(read);
    };
    let next: Promise<Page> | null = readPage(db, range, cursor, pageSize);
    try {
      for (;;) {
        if (opts.signal?.aborted) break;
        const page: Page = await (next ?? readPage(db, range, cursor, pageSize));
        next = null;
        if (page.rows.length === 0) break;
        next = readPage(db, range, page.last, pageSize);
        next.catch(() => undefined); // awaited next turn; a failure there is thrown then
        const enriched = await enrichPage(page, content, queued);
        queued += enriched.events.length;
        const done = target.deliver(enriched);
        done.catch(() => undefined); // awaited in order by settleOldest
        inFlight.push({ done, rows: page.rows.length, events: enriched.events.length, rejected: enriched.rejected.length, last: page.last });
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
    if (Object.keys(parked).length > 0) log.warn({ parked }, 'sinks refused some events: they are in the DLQ (`engage dlq list`), to replay once the cause is fixed');
    const result: BackfillResult = { range: range.key, resumed, read, delivered, dlq, parked, seconds, rate: read / Math.max(seconds, 0.001) };
    log.info({ ...result, target: target.name }, finished ? 'backfill finished' : 'backfill interrupted; run it again to resume');
    return result;
  } finally {
    await target?.close().catch(() => undefined);
    await db.end().catch(() => undefined);
  }
}

/**
 * Enrichment yields to the event loop this often, so the target's I/O continuations (a DuckDB
 * transaction's next step after its id lookup, its commit) are not held up for a whole page.
 */
const YIELD_ROWS = 1000;

async function openTarget(config: Config, opts: BackfillOptions, rangeKey: string, log: Logger): Promise<BackfillTarget> {
  if (!opts.direct || opts.direct.length === 0) {
    const { openTopicTarget } = await import('./topic-target.js');
    return openTopicTarget(config);
  }
  const [{ directFactories, openDirectTarget }, { getSinkFactory }] = await Promise.all([import('./direct-target.js'), import('../sinks/registry.js')]);
  return openDirectTarget(config, directFactories(opts.direct, getSinkFactory), rangeKey, log, opts.signal);
}

/** The stream's transform over one page; `deliveredBefore` = events of the range before it. */
async function enrichPage(page: Page, content: ReadonlyMap<string, ContentRow>, deliveredBefore: number): Promise<BackfillPage> {
  const now = Date.now();
  const out: BackfillPage = { events: [], rejected: [], deliveredBefore };
  let i = 0;
  for (const row of page.rows) {
    if (++i % YIELD_ROWS === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const res = enrichEvent(row, row.content_id ? content.get(row.content_id) : undefined, { sourceTsMs: now, processedTsMs: now, origin: 'backfill' });
    if (res.ok) out.events.push(res.event);
    else out.rejected.push({ row, error: res.error });
  }
  return out;
}
