import type { DuckDBConnection } from '@duckdb/node-api';
import { errorMessage, PipelineError } from '../../core/errors.js';
import type { SinkBatch, SinkRecord } from '../../core/sink-contract.js';
import { appendFactRows, isoToMicros } from './duckdb-chunk.js';
import { existingKeysSql, rowValues, STAGE_CONTENT, stageLine, storeOffsetSql, upsertContentSql } from './duckdb-sql.js';
import type { ContentMemo } from './content-memo.js';
import { CONTENT_DIM, contentRows, FACT_TABLE, uniqueByEventKey, type Row } from './schema.js';

/**
 * Batches into DuckDB, exactly once in effect: ONE transaction (for one batch, or several
 * partitions' batches grouped by the sink) that
 *   1. looks up which of the batches' events are stored already, by (event_id, event_ts)
 *      (duckdb-sql.ts existingKeysSql; an id reused by a new event after a sequence reset is a
 *      new event);
 *   2. appends the other rows (Appender, typed chunks: duckdb-chunk.ts) — an event carried twice
 *      keeps the first;
 *   3. upserts content_dim (a newer enrichment wins) — only the rows `memo` says changed;
 *   4. stores each batch's partition next offset;
 * then COMMITs — durable when it returns (DuckDB syncs its WAL). A crash before the commit leaves
 * nothing of the batches and the old offsets, so the runtime re-reads them; after it, rows and
 * offsets are there together, so the runtime resumes after them; a re-sent event (a replay, a
 * backfill) is skipped by its (event_id, event_ts) either way. The caller serialises calls on the connection
 * (the id lookup of step 1 relies on being the only writer).
 *
 * Returns the number of fact rows inserted. Throws what DuckDB threw, after a ROLLBACK.
 */
export async function writeTransaction(conn: DuckDBConnection, batches: readonly SinkBatch[], memo: ContentMemo): Promise<number> {
  const records = uniqueByEventKey(batches.length === 1 ? (batches[0] as SinkBatch).records : batches.flatMap((b) => b.records));
  let inserted = 0;
  let content: Row[] = [];
  await conn.run('BEGIN TRANSACTION');
  try {
    if (records.length > 0) {
      const ids = records.map((r) => eventId(r));
      let lo = ids[0] as bigint;
      let hi = lo;
      for (const id of ids) {
        if (id < lo) lo = id;
        if (id > hi) hi = id;
      }
      const found = await conn.runAndReadAll(existingKeysSql(lo, hi), [ids.join(',')]);
      const stored = new Set(found.getRowsJS().map(([key]) => String(key)));
      const fresh = stored.size === 0 ? records : records.filter((r, i) => !stored.has(`${String(ids[i])}@${storedMicros(r)}`));
      if (fresh.length > 0) await appendFacts(conn, fresh);
      inserted = fresh.length;
      content = await upsertChangedContent(conn, memo, contentRows(records));
    }
    await conn.run([...batches.map((b) => storeOffsetSql(b.topic, b.partition, b.nextOffset)), 'COMMIT'].join(';\n'));
    memo.committed(content);
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return inserted;
}

/**
 * Step 3 of a write transaction (any of the warehouse's ways): upserts the content rows `memo`
 * says changed, and returns them, for `memo.committed` once the transaction has committed.
 */
export async function upsertChangedContent(conn: DuckDBConnection, memo: ContentMemo, rows: Row[]): Promise<Row[]> {
  const content = memo.changed(rows);
  if (content.length > 0) {
    await conn.run(`DELETE FROM ${STAGE_CONTENT}`);
    await appendLines(conn, STAGE_CONTENT, content.map((r) => stageLine(rowValues(CONTENT_DIM, r))));
    await conn.run(upsertContentSql());
  }
  return content;
}

/** The record's event id as an int64 (its canonical decimal is how stored ids come back). */
function eventId(r: SinkRecord): bigint {
  try {
    return BigInt(r.event.event_id);
  } catch {
    throw new PipelineError('SINK_REJECTED', `event_id ${JSON.stringify(r.event.event_id)} is not an integer`);
  }
}

/** The record's event_ts as DuckDB stores it (µs since the epoch, duckdb-chunk.ts's conversion). */
function storedMicros(r: SinkRecord): string {
  return isoToMicros(r.event.event_ts).toString();
}

async function appendFacts(conn: DuckDBConnection, records: SinkRecord[]): Promise<void> {
  const appender = await conn.createAppender(FACT_TABLE.name);
  try {
    appendFactRows(appender, records, BigInt(Date.now()) * 1000n);
  } catch (err) {
    try {
      appender.closeSync();
    } catch {
      // the append's own error is the one to report
    }
    throw err;
  }
  appender.closeSync();
}

/** Bulk-appends staged lines (duckdb-sql.ts stageLine) into a TEMP staging table, one row each. */
export async function appendLines(conn: DuckDBConnection, stage: string, lines: Iterable<string>): Promise<void> {
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
      ? new PipelineError('SERVICE_MISCONFIGURED', `DuckDB ran out of memory opening the warehouse: ${hint}. ${message}`, { cause: err })
      : new PipelineError('SINK_WRITE_FAILED', `DuckDB ran out of memory writing a batch: ${hint}. ${message}`, { retriable: true, cause: err });
  }
  if (/Could not set lock|Conflicting lock/i.test(message)) {
    // Another process holds the file (a second sink, a person's `duckdb` shell, a backup): the
    // sink waits for the lock like for any other outage rather than exiting for good.
    return new PipelineError('SERVICE_UNREACHABLE', `the DuckDB file is open in another process (one warehouse sink owns it; waiting for it to be released): ${message}`, { retriable: true, cause: err, details: { locked: true } });
  }
  if (during === 'write' && /^Catalog Error/i.test(message)) {
    return new PipelineError('SINK_STATE_LOST', `a warehouse table is missing: ${message}`, { retriable: true, cause: err });
  }
  if (/^(Conversion|Constraint|Invalid Input|Out of Range) Error/i.test(message)) {
    return new PipelineError('SINK_REJECTED', `DuckDB refused the batch: ${message}`, { cause: err });
  }
  return new PipelineError('SINK_WRITE_FAILED', `DuckDB ${during} failed: ${message}`, { retriable: true, cause: err });
}
