import type { DuckDBConnection } from '@duckdb/node-api';
import type { ContentRow } from '../../core/types.js';
import { DIRECT_PARTITION } from '../contract.js';
import type { SourceImportResult, SourcePage } from '../source-import.js';
import type { ContentMemo } from './content-memo.js';
import { writeStagedTransaction } from './duckdb-encoded.js';
import { createSourceContentSql, SOURCE_CONTENT, stageSourceRowsSql } from './duckdb-source-sql.js';

/**
 * The DuckDB warehouse's bulk import (src/sinks/source-import.ts): a CSV file of source rows is
 * read, enriched and judged by DuckDB (duckdb-source-sql.ts), then written by the fast path's
 * transaction (duckdb-encoded.ts writeStagedTransaction): the verdict of every rule, the insert
 * of the ids not stored yet, content_dim, the position, one COMMIT. A page with any row the
 * transform or `check` might refuse is declined whole, nothing written.
 * The caller serialises calls on the connection.
 */
export async function importSourceTransaction(conn: DuckDBConnection, page: SourcePage, memo: ContentMemo): Promise<SourceImportResult & { inserted: number }> {
  await loadContent(conn, page.content);
  const result = await writeStagedTransaction(conn, memo, {
    topic: page.topic,
    partition: DIRECT_PARTITION,
    expected: page.rows,
    nextOffset: String(page.deliveredBefore + page.rows),
    fill: async () => {
      await conn.run(stageSourceRowsSql(page.file, page.nowMs));
    },
  });
  return result.kind === 'written' ? { kind: 'written', rows: result.staged, inserted: result.inserted } : { kind: 'declined', rows: result.staged, inserted: 0 };
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
