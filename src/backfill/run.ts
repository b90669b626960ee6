import pg from 'pg';
import type { Config } from '../config/load.js';
import type { Logger } from '../core/logger.js';
import type { ContentRow, DlqEntry } from '../core/types.js';
import { ensureTopics } from '../kafka/admin.js';
import { enrichEvent } from '../processor/enrich.js';
import { PageProducer } from './page-producer.js';
import { ProgressBar } from './progress-bar.js';
import { ensureProgressTable, loadProgress, saveProgress } from './progress-store.js';
import { parseDateRange } from './range.js';
import { countRange, readPage, type Cursor, type Page } from './reader.js';

/**
 * `engage process --mode backfill --start-date D --end-date D`: re-reads the range from
 * PostgreSQL, enriches each row with the stream's pure transform, and produces the result to the
 * enriched topic (origin `backfill`), from where every sink takes it as usual: the warehouse and
 * the external system dedupe by event id, Redis keeps only what falls in its live window and
 * dedupes by event id too. Rows the transform rejects go to the DLQ with the reason.
 * Idempotent (a re-run, or a range the stream already delivered, changes no count) and resumable
 * (progress is saved after each confirmed page).
 */

export interface BackfillOptions {
  startDate: string;
  endDate: string;
  pageSize?: number;
  /** Ignore saved progress and start the range from its beginning. */
  restart?: boolean;
  progress?: boolean;
  signal?: AbortSignal;
}

export interface BackfillResult {
  range: string;
  resumed: boolean;
  read: number;
  delivered: number;
  dlq: number;
  seconds: number;
  rate: number;
}

const CONTENT_SQL = `SELECT id::text AS id, slug, title, content_type, length_seconds,
  to_char(publish_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS publish_ts FROM content`;

export async function runBackfill(config: Config, opts: BackfillOptions, log: Logger): Promise<BackfillResult> {
  const range = parseDateRange(opts.startDate, opts.endDate);
  const pageSize = opts.pageSize ?? 20000;
  const db = new pg.Client({ connectionString: config.databaseUrl });
  await db.connect();
  let producer: PageProducer | undefined;
  try {
    await ensureProgressTable(db);
    const saved = opts.restart ? null : await loadProgress(db, range.key);
    const resumed = Boolean(saved && !saved.done && saved.cursor);
    let cursor: Cursor | null = resumed ? (saved?.cursor ?? null) : null;
    let delivered = resumed ? (saved?.delivered ?? 0) : 0;
    if (saved?.done && !opts.restart) log.info({ range: range.key }, 'range was backfilled before; re-sending it (sinks dedupe by event id)');
    if (resumed) log.info({ range: range.key, after: cursor, delivered }, 'resuming an interrupted backfill');

    const content = new Map((await db.query<ContentRow>(CONTENT_SQL)).rows.map((c) => [c.id, c]));
    await ensureTopics(config);
    producer = new PageProducer(config.kafkaBrokers, `${config.KAFKA_CLIENT_ID}-backfill`);
    await producer.connect();

    const total = await countRange(db, range, cursor);
    const bar = opts.progress === false ? undefined : new ProgressBar(`backfill ${range.key}`, total);
    const t0 = Date.now();
    let read = 0;
    let dlq = 0;
    // The next page is read while this one is produced (PostgreSQL and Kafka work in parallel);
    // progress still advances only after a page's delivery is confirmed, in page order.
    let next: Promise<Page> | null = readPage(db, range, cursor, pageSize);
    for (;;) {
      if (opts.signal?.aborted) break;
      const page: Page = await (next ?? readPage(db, range, cursor, pageSize));
      next = null;
      if (page.rows.length === 0) break;
      next = readPage(db, range, page.last, pageSize);
      next.catch(() => undefined); // awaited next turn; a failure there is thrown then
      const now = Date.now();
      const enriched: { key: string; value: string }[] = [];
      const rejected: { key: string; value: string }[] = [];
      for (const row of page.rows) {
        const res = enrichEvent(row, row.content_id ? content.get(row.content_id) : undefined, { sourceTsMs: now, processedTsMs: now, origin: 'backfill' });
        if (res.ok) {
          enriched.push({ key: res.event.content_id, value: JSON.stringify(res.event) });
        } else {
          const entry: DlqEntry = {
            reason: res.error.message,
            code: res.error.code,
            stage: 'backfill',
            topic: 'postgres:engagement_events',
            partition: 0,
            offset: row.id,
            key: JSON.stringify({ id: row.id }),
            value_base64: Buffer.from(JSON.stringify(row)).toString('base64'),
            failed_at: new Date(now).toISOString(),
            attempts: 1,
          };
          rejected.push({ key: entry.key ?? row.id, value: JSON.stringify(entry) });
        }
      }
      const batches = [];
      if (enriched.length > 0) batches.push({ topic: config.KAFKA_TOPIC_ENRICHED, messages: enriched });
      if (rejected.length > 0) batches.push({ topic: config.KAFKA_TOPIC_DLQ, messages: rejected });
      // Resolves once every message is acknowledged by the broker (acks=all), else throws.
      await producer.deliver(batches);
      read += page.rows.length;
      delivered += enriched.length;
      dlq += rejected.length;
      cursor = page.last;
      await saveProgress(db, range.key, { cursor, done: false, delivered });
      bar?.update(read);
    }
    await next?.catch(() => undefined);
    const finished = !opts.signal?.aborted;
    if (finished) await saveProgress(db, range.key, { cursor, done: true, delivered });
    bar?.finish(read);
    const seconds = (Date.now() - t0) / 1000;
    const result: BackfillResult = { range: range.key, resumed, read, delivered, dlq, seconds, rate: read / Math.max(seconds, 0.001) };
    log.info(result, finished ? 'backfill finished' : 'backfill interrupted; run it again to resume');
    return result;
  } finally {
    await producer?.disconnect().catch(() => undefined);
    await db.end().catch(() => undefined);
  }
}
