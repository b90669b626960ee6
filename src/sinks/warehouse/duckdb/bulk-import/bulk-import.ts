// src/sinks/warehouse/duckdb/bulk-import/ — the bulk import (docs/warehouse.md, "Bulk import").
//
// What: `importSourcePage` for the direct backfill: a CSV page written by PostgreSQL's COPY is
// judged, enriched (the stream's transform written in SQL, bulk-import-sql.ts, converting values
// as the fast path does: fast-path/encoded-sql.ts factSelectSql) and inserted by DuckDB in one
// transaction, without JS objects for its rows.
// When: `engage process --mode backfill --direct warehouse` with DuckDB as the only sink, unless
// `--no-bulk-import`.
// Guarantees: a page is stored exactly as enrichEvent + `write` would store it, or declined whole
// with nothing written (then read again as rows and delivered the checked way, so DLQ reasons are
// the row-by-row ones); rows and the backfill position commit together.

import type { DuckDBConnection } from '@duckdb/node-api';
import type { ContentRow } from '../../../../core/types.js';
import { DIRECT_PARTITION } from '../../../../core/sink-contract.js';
import type { SourceImportResult, SourcePage } from '../../../source-import.js';
import type { ContentMemo } from '../content-memo.js';
import { createSourceContentSql, insertSourceSql, SOURCE_CONTENT, sourceVerdictSql } from './bulk-import-sql.js';
import { storeOffsetSql } from '../sql.js';
import { classifyDuckDbError, upsertChangedContent } from '../write-common.js';
import type { Row } from '../../schema.js';

/**
 * The DuckDB warehouse's bulk import (src/sinks/source-import.ts): a CSV file of source rows is
 * judged, enriched and inserted by DuckDB (bulk-import/bulk-import-sql.ts) in ONE transaction: the verdict
 * (every row accepted, the count COPY wrote, no id twice), the insert of the ids not stored yet,
 * content_dim (the rows `memo` says changed), the position, COMMIT — exactly-once as in
 * checked/checked-write.ts. A page with any row the transform or `check` might refuse, or that DuckDB
 * cannot read or convert, is declined whole after a ROLLBACK, nothing written.
 * The caller serialises calls on the connection. Throws what DuckDB threw for any other failure.
 */
export async function importSourceTransaction(
  conn: DuckDBConnection,
  page: SourcePage,
  memo: ContentMemo,
): Promise<SourceImportResult & { inserted: number }> {
  await loadContent(conn, page.content);
  let content: Row[] = [];
  let inserted = 0;
  await conn.run('BEGIN TRANSACTION');
  try {
    const declined = async (rows: number) => {
      await conn.run('ROLLBACK');
      return { kind: 'declined', rows, inserted: 0 } as const;
    };
    let verdict: Verdict;
    try {
      verdict = (await conn.runAndReadAll(sourceVerdictSql(page.file, page.nowMs))).getRowsJS()[0] as Verdict;
    } catch (err) {
      if (classifyDuckDbError(err, 'write').code !== 'SINK_REJECTED') throw err;
      return await declined(0);
    }
    const [count, bad, repeated, lo, hi, contentIds] = verdict;
    const rows = Number(count);
    if (rows !== page.rows || bad > 0n || repeated > 0n || lo === null || hi === null) return await declined(rows);
    try {
      inserted = (await conn.run(insertSourceSql(page.file, page.nowMs, lo, hi))).rowsChanged;
    } catch (err) {
      if (classifyDuckDbError(err, 'write').code !== 'SINK_REJECTED') throw err;
      return await declined(rows);
    }
    content = await upsertChangedContent(conn, memo, contentRows(page, contentIds));
    await conn.run(`${storeOffsetSql(page.topic, DIRECT_PARTITION, String(page.deliveredBefore + rows))}; COMMIT`);
    memo.committed(content);
    return { kind: 'written', rows, inserted };
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** sourceVerdictSql's row: rows, not accepted, repeated ids, lo, hi, content ids. */
type Verdict = [bigint, bigint, bigint, bigint | null, bigint | null, string[]];

/** content_dim's rows for the page, as schema.ts contentRows makes them of its enriched events. */
function contentRows(page: SourcePage, ids: readonly string[]): Row[] {
  const wanted = new Set(ids);
  return page.content
    .filter((c) => wanted.has(c.id))
    .map((c) => ({
      content_id: c.id,
      content_slug: c.slug,
      content_title: c.title,
      content_type: c.content_type,
      length_seconds: c.length_seconds,
      publish_ts: c.publish_ts,
      version_ms: page.nowMs,
    }));
}

/** The catalogue each connection holds in SOURCE_CONTENT; a run passes the same array with every page. */
const loaded = new WeakMap<DuckDBConnection, readonly ContentRow[]>();

async function loadContent(conn: DuckDBConnection, content: readonly ContentRow[]): Promise<void> {
  if (loaded.get(conn) === content) return;
  loaded.delete(conn);
  await conn.run(createSourceContentSql());
  const appender = await conn.createAppender(SOURCE_CONTENT, 'main', 'temp');
  try {
    for (const c of content) {
      // NULLs where the types say none can be: the verdict then refuses the rows, the ordinary way says why.
      for (const v of [c.id, c.slug, c.title, c.content_type] as Array<string | null>) {
        if (typeof v === 'string') appender.appendVarchar(v);
        else appender.appendNull();
      }
      if (Number.isSafeInteger(c.length_seconds)) appender.appendBigInt(BigInt(c.length_seconds as number));
      else appender.appendNull();
      if (typeof c.publish_ts === 'string') appender.appendVarchar(c.publish_ts);
      else appender.appendNull();
      appender.endRow();
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
  loaded.set(conn, content);
}
