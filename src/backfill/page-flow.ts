import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import type { Logger } from '../core/logger.js';
import type { Pseudonymiser } from '../core/pseudonym.js';
import type { ContentRow } from '../core/types.js';
import { enrichEvent } from '../processor/enrich.js';
import { copyPage } from './copy-reader.js';
import type { SourceColumnSql } from './pseudonym-sql.js';
import type { DateRange } from './range.js';
import { readPage, type Cursor, type Page } from './reader.js';
import type { BackfillPage, BackfillTarget, PageReport } from './target.js';

/**
 * How the backfill reads a page and hands it to its target (run.ts owns the order, the pages in
 * flight and the progress). Two ways:
 * - rows (`rowPages`): the page's rows become JS objects, are enriched here by the stream's
 *   transform, and go to `target.deliver`;
 * - COPY (`copyPages`, when the target has `deliverSource`): PostgreSQL writes the page as CSV
 *   into a temporary file, which the target imports itself; a page it declines is read again as
 *   rows, through the same bounds, and delivered the first way. The PII_FIELDS columns are
 *   pseudonymised by PostgreSQL in the first way (`columnSql`, pseudonym-sql.ts), here in the second.
 * Both read pages by keyset in (event_ts, id) order; `read(after)` resolves null past the last.
 */

export interface Delivered {
  report: PageReport;
  /** Source rows the page held, events delivered, rows the transform rejected (in the DLQ). */
  rows: number;
  events: number;
  rejected: number;
  /** The page went to the target as COPY wrote it (`deliverSource`), not row by row. */
  imported: boolean;
}

export interface ReadPage {
  last: Cursor;
  /**
   * Starts the page's delivery, `deliveredBefore` being the events handed over before it; resolves
   * (once the page is ready to go) with the events it hands over and the delivery itself.
   */
  start(deliveredBefore: number): Promise<{ events: number; done: Promise<Delivered> }>;
}

export interface PageFlow {
  read(after: Cursor | null): Promise<ReadPage | null>;
  close(): Promise<void>;
}

export interface FlowContext {
  db: pg.ClientBase;
  range: DateRange;
  pageSize: number;
  content: readonly ContentRow[];
  target: BackfillTarget;
  /** The PII_FIELDS columns' pseudonyms, applied to every row read before anything else sees it. */
  pii: Pseudonymiser;
  log: Logger;
}

export function rowPages(ctx: FlowContext): PageFlow {
  const byId = new Map(ctx.content.map((c) => [c.id, c]));
  return {
    async read(after) {
      const page = await readPage(ctx.db, ctx.range, after, ctx.pageSize);
      if (!page.last) return null;
      return { last: page.last, start: (before) => startRows(ctx, page, byId, before) };
    },
    close: async () => undefined,
  };
}

/** `columnSql`: how COPY selects each column, the tagged ones as their pseudonyms (bulkColumnSql). */
export async function copyPages(ctx: FlowContext, columnSql: SourceColumnSql): Promise<PageFlow> {
  const deliverSource = ctx.target.deliverSource?.bind(ctx.target);
  if (!deliverSource) throw new Error('copyPages: the target does not import source rows');
  const byId = new Map(ctx.content.map((c) => [c.id, c]));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'engage-backfill-'));
  let n = 0;
  return {
    async read(after) {
      const file = path.join(dir, `page-${n++}.csv`);
      const copied = await copyPage(ctx.db, ctx.range, after, ctx.pageSize, file, columnSql).catch(
        async (err: unknown) => {
          await rm(file, { force: true });
          throw err;
        },
      );
      if (!copied) return null;
      const { last, rows } = copied;
      const deliver = async (before: number): Promise<Delivered> => {
        let imported: Awaited<ReturnType<typeof deliverSource>>;
        try {
          imported = await deliverSource({
            file,
            rows,
            content: ctx.content,
            nowMs: Date.now(),
            deliveredBefore: before,
          });
        } finally {
          await rm(file, { force: true });
        }
        if (imported)
          return { report: imported, rows: imported.rows, events: imported.rows, rejected: 0, imported: true };
        ctx.log.info(
          { after, through: last },
          'a page was declined by the bulk import (a row the transform or a sink may refuse): delivering it row by row',
        );
        const page = await readPage(ctx.db, ctx.range, after, ctx.pageSize, last);
        return (await startRows(ctx, page, byId, before)).done;
      };
      // Counted as `rows` events for the positions of the pages after it, whichever way it goes.
      return { last, start: async (before) => ({ events: rows, done: deliver(before) }) };
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

async function startRows(
  ctx: FlowContext,
  page: Page,
  content: ReadonlyMap<string, ContentRow>,
  before: number,
): Promise<{ events: number; done: Promise<Delivered> }> {
  const target = ctx.target;
  if (ctx.pii.columnsOf('engagement_events').size > 0) {
    for (const row of page.rows) ctx.pii.protectRow('engagement_events', row as unknown as Record<string, unknown>);
  }
  const enriched = await enrichPage(page, content, before);
  const done = target.deliver(enriched).then((report) => ({
    report,
    rows: page.rows.length,
    events: enriched.events.length,
    rejected: enriched.rejected.length,
    imported: false,
  }));
  return { events: enriched.events.length, done };
}

/**
 * Enrichment yields to the event loop this often, so the target's I/O continuations (a DuckDB
 * transaction's next step after its id lookup, its commit) are not held up for a whole page.
 */
const YIELD_ROWS = 1000;

/** The stream's transform over one page; `deliveredBefore` = events of the range before it. */
async function enrichPage(
  page: Page,
  content: ReadonlyMap<string, ContentRow>,
  deliveredBefore: number,
): Promise<BackfillPage> {
  const now = Date.now();
  const out: BackfillPage = { events: [], rejected: [], deliveredBefore };
  let i = 0;
  for (const row of page.rows) {
    if (++i % YIELD_ROWS === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const res = enrichEvent(row, row.content_id ? content.get(row.content_id) : undefined, {
      sourceTsMs: now,
      processedTsMs: now,
      origin: 'backfill',
    });
    if (res.ok) out.events.push(res.event);
    else out.rejected.push({ row, error: res.error });
  }
  return out;
}
