// src/sinks/warehouse/duckdb/checked/ — the checked write (docs/warehouse.md, "DuckDB").
//
// What: the sink's `write(batch)` for records the runtime has decoded and passed through `check`
// (record-check.ts): the rows are looked up by (event_id, event_ts) and the new ones appended with
// DuckDB's Appender as typed chunks (chunk.ts, vectors.ts), in one transaction per group of
// partitions' batches.
// When: every batch the runtime delivers decoded — stream batches below `encodedMinRecords`
// (4,096), batches the fast path answered `needs-check` for, DLQ replays, and pages the bulk
// import declined (read again as rows).
// Guarantees: rows and offsets in one COMMIT; a stored event is skipped; a group refused for its
// data is retried one batch per transaction by the caller, so only the bad batch fails.

import type { DuckDBConnection } from '@duckdb/node-api';
import { PipelineError } from '../../../../core/errors.js';
import type { SinkBatch, SinkRecord } from '../../../../core/sink-contract.js';
import { appendFactRows, isoToMicros } from './chunk.js';
import { existingKeysSql, storeOffsetSql } from '../sql.js';
import { upsertChangedContent } from '../write-common.js';
import type { ContentMemo } from '../content-memo.js';
import { contentRows, FACT_TABLE, uniqueByEventKey, type Row } from '../../schema.js';

/**
 * Batches into DuckDB, exactly once in effect: ONE transaction (for one batch, or several
 * partitions' batches grouped by the sink) that
 *   1. looks up which of the batches' events are stored already, by (event_id, event_ts)
 *      (duckdb/sql.ts existingKeysSql; an id reused by a new event after a sequence reset is a
 *      new event);
 *   2. appends the other rows (Appender, typed chunks: checked/chunk.ts) — an event carried twice
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
export async function writeTransaction(
  conn: DuckDBConnection,
  batches: readonly SinkBatch[],
  memo: ContentMemo,
): Promise<number> {
  const records = uniqueByEventKey(
    batches.length === 1 ? (batches[0] as SinkBatch).records : batches.flatMap((b) => b.records),
  );
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
      const fresh =
        stored.size === 0 ? records : records.filter((r, i) => !stored.has(`${String(ids[i])}@${storedMicros(r)}`));
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

/** The record's event id as an int64 (its canonical decimal is how stored ids come back). */
function eventId(r: SinkRecord): bigint {
  try {
    return BigInt(r.event.event_id);
  } catch {
    throw new PipelineError('SINK_REJECTED', `event_id ${JSON.stringify(r.event.event_id)} is not an integer`);
  }
}

/** The record's event_ts as DuckDB stores it (µs since the epoch, checked/chunk.ts's conversion). */
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
