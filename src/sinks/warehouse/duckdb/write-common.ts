import type { DuckDBConnection } from '@duckdb/node-api';
import { errorMessage, PipelineError } from '../../../core/errors.js';
import type { ContentMemo } from './content-memo.js';
import { rowValues, STAGE_CONTENT, stageLine, upsertContentSql } from './sql.js';
import { CONTENT_DIM, type Row } from '../schema.js';

/**
 * What the three DuckDB write paths (checked/, fast-path/, bulk-import/) share inside their one
 * transaction: the content_dim upsert of the rows that changed, and the reading of a DuckDB
 * failure as a PipelineError. Each caller runs these on the writer's connection, inside its own
 * BEGIN … COMMIT; nothing here begins, commits or rolls back.
 */

/**
 * Step 3 of a write transaction (any of the warehouse's ways): upserts the content rows `memo`
 * says changed, and returns them, for `memo.committed` once the transaction has committed.
 */
export async function upsertChangedContent(conn: DuckDBConnection, memo: ContentMemo, rows: Row[]): Promise<Row[]> {
  const content = memo.changed(rows);
  if (content.length > 0) {
    await conn.run(`DELETE FROM ${STAGE_CONTENT}`);
    await appendLines(
      conn,
      STAGE_CONTENT,
      content.map((r) => stageLine(rowValues(CONTENT_DIM, r))),
    );
    await conn.run(upsertContentSql());
  }
  return content;
}

/** Bulk-appends staged lines (duckdb/sql.ts stageLine) into a TEMP staging table, one row each. */
async function appendLines(conn: DuckDBConnection, stage: string, lines: Iterable<string>): Promise<void> {
  const appender = await conn.createAppender(stage, 'main', 'temp');
  try {
    for (const line of lines) {
      appender.appendVarchar(line);
      appender.endRow();
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
}

/**
 * A DuckDB failure as a PipelineError: values DuckDB refuses (conversion, constraint, invalid
 * input) are not retriable — `check` should have caught them; running out of memory names the
 * setting to raise (a misconfiguration at open, retriable in a write); a missing table (someone
 * dropped it) is SINK_STATE_LOST, so the runtime re-reads the stored offsets after the schema is
 * re-created; a file locked by another process is a misconfiguration; anything else (I/O, a
 * FATAL error that invalidated the database, which the next attempt re-opens) is retriable.
 */
export function classifyDuckDbError(err: unknown, during: 'open' | 'write'): PipelineError {
  if (err instanceof PipelineError) return err;
  const message = errorMessage(err);
  if (/Out of Memory|could not allocate block/i.test(message)) {
    // At open nothing but the schema is in memory: the bound itself is too small. A write may fit
    // once memory is freed, so it is retried (and parked when retries run out, replayable).
    const hint = 'raise DUCKDB_MEMORY_LIMIT (or unset it), or lower BATCH_SIZE';
    return during === 'open'
      ? new PipelineError(
          'SERVICE_MISCONFIGURED',
          `DuckDB ran out of memory opening the warehouse: ${hint}. ${message}`,
          { cause: err },
        )
      : new PipelineError('SINK_WRITE_FAILED', `DuckDB ran out of memory writing a batch: ${hint}. ${message}`, {
          retriable: true,
          cause: err,
        });
  }
  if (/Could not set lock|Conflicting lock/i.test(message)) {
    // Another process holds the file (a second sink, a person's `duckdb` shell, a backup): the
    // sink waits for the lock like for any other outage rather than exiting for good.
    return new PipelineError(
      'SERVICE_UNREACHABLE',
      `the DuckDB file is open in another process (one warehouse sink owns it; waiting for it to be released): ${message}`,
      { retriable: true, cause: err, details: { locked: true } },
    );
  }
  if (during === 'write' && /^Catalog Error/i.test(message)) {
    return new PipelineError('SINK_STATE_LOST', `a warehouse table is missing: ${message}`, {
      retriable: true,
      cause: err,
    });
  }
  if (/^(Conversion|Constraint|Invalid Input|Out of Range) Error/i.test(message)) {
    return new PipelineError('SINK_REJECTED', `DuckDB refused the batch: ${message}`, { cause: err });
  }
  return new PipelineError('SINK_WRITE_FAILED', `DuckDB ${during} failed: ${message}`, { retriable: true, cause: err });
}
