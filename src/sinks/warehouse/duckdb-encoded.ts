import { blobValue, type DuckDBBlobValue, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import type { EncodedBatch, EncodedWriteResult } from '../contract.js';
import type { ContentMemo } from './content-memo.js';
import { decodeStageSql, insertStagedSql, STAGE_ROWS, stageVerdictSql } from './duckdb-encoded-sql.js';
import { storeOffsetSql } from './duckdb-sql.js';
import { classifyDuckDbError, upsertChangedContent } from './duckdb-write.js';
import type { Row } from './schema.js';

/**
 * The DuckDB fast path (the contract's `writeEncoded`): a batch of undecoded enriched events in
 * ONE transaction, like duckdb-write.ts's, but the JSON is decoded, judged and converted by
 * DuckDB's JSON reader on DuckDB's thread instead of `JSON.parse` and the chunk writer on the JS
 * thread (docs/warehouse.md "Two write paths"). In one transaction:
 *   1. the values, handed over as ONE blob, are decoded once into a temp table
 *      (duckdb-encoded-sql.ts decodeStageSql; it holds the last batch until the next one);
 *   2. if any row is not `ok` (a record `check` might refuse), a value is not a JSON object with
 *      each field once, or the batch carries an event id twice (rare: the checked way keeps the
 *      first), ROLLBACK and `needs-check`: nothing is written, the runtime takes the checked way;
 *   3. the rows whose event id is not stored already are inserted; content_dim is upserted
 *      (only rows `memo` says changed); the partition's next offset is stored; COMMIT.
 * Exactly-once holds as in duckdb-write.ts (rows and offset in one commit, ids skipped when
 * stored). The caller serialises calls on the connection. Throws what DuckDB threw for any other
 * failure, after a ROLLBACK.
 */
export async function writeEncodedTransaction(conn: DuckDBConnection, batch: EncodedBatch, memo: ContentMemo): Promise<EncodedWriteResult & { inserted: number }> {
  let content: Row[] = [];
  let inserted = 0;
  let sourceTsMs: Array<number | null> = [];
  // Round trips are few on purpose: each waits for the JS thread, which is busy consuming.
  try {
    if (batch.records.length === 0) {
      await conn.run('BEGIN TRANSACTION');
    } else {
      const statements = await prepared(conn);
      await conn.run(`BEGIN TRANSACTION; DELETE FROM ${STAGE_ROWS}`);
      try {
        statements.decode.bind(stagedParams(batch));
        await statements.decode.run();
      } catch (err) {
        // DuckDB refusing a value (not JSON, a conversion): the checked way judges such records one by one.
        if (classifyDuckDbError(err, 'write').code !== 'SINK_REJECTED') throw err;
        await conn.run('ROLLBACK');
        return { kind: 'needs-check', inserted: 0 };
      }
      const reader = await statements.verdict.runAndReadAll();
      const [count, bad, repeated, lo, hi, times, rows] = (reader.getRowsJS() as Verdict[])[0] as Verdict;
      if (Number(count) !== batch.records.length || bad > 0n || repeated > 0n || lo === null || hi === null) {
        await conn.run('ROLLBACK');
        return { kind: 'needs-check', inserted: 0 };
      }
      sourceTsMs = times;
      statements.insert.bind([batch.partition, lo, hi]);
      inserted = (await statements.insert.run()).rowsChanged;
      content = await upsertChangedContent(conn, memo, rows.map(contentRow));
    }
    await conn.run(`${storeOffsetSql(batch.topic, batch.partition, batch.nextOffset)}; COMMIT`);
    memo.committed(content);
    return { kind: 'written', sourceTsMs, inserted };
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

type ContentTuple = { content_id: string; content_slug: string; content_title: string; content_type: string | null; length_seconds: bigint | null; publish_ts: string | null; processed_ts_ms: bigint };
/** stageVerdictSql's row: staged, bad, repeated, lo, hi, source times, content rows. */
type Verdict = [bigint, bigint, bigint, bigint | null, bigint | null, Array<number | null>, ContentTuple[]];

function contentRow(c: ContentTuple): Row {
  return {
    content_id: c.content_id,
    content_slug: c.content_slug,
    content_title: c.content_title,
    content_type: c.content_type,
    length_seconds: c.length_seconds === null ? null : Number(c.length_seconds),
    publish_ts: c.publish_ts,
    version_ms: Number(c.processed_ts_ms),
  };
}

interface Statements {
  decode: DuckDBPreparedStatement;
  verdict: DuckDBPreparedStatement;
  insert: DuckDBPreparedStatement;
}
/** The statements every batch runs, prepared once per connection (planning them cost ~5–10 ms a batch). */
const preparedByConnection = new WeakMap<DuckDBConnection, Promise<Statements>>();

function prepared(conn: DuckDBConnection): Promise<Statements> {
  let statements = preparedByConnection.get(conn);
  if (statements === undefined) {
    statements = (async () => ({
      decode: await conn.prepare(decodeStageSql()),
      verdict: await conn.prepare(stageVerdictSql()),
      insert: await conn.prepare(insertStagedSql()),
    }))();
    statements.catch(() => preparedByConnection.delete(conn));
    preparedByConnection.set(conn, statements);
  }
  return statements;
}

/** The batch's values joined by newlines, and its offsets joined by commas (decodeStageSql's $1, $2). */
function stagedParams(batch: EncodedBatch): [DuckDBBlobValue, string] {
  const parts: Buffer[] = [];
  const offsets: string[] = [];
  for (const r of batch.records) {
    if (parts.length > 0) parts.push(NEWLINE);
    parts.push(r.value);
    offsets.push(r.offset);
  }
  return [blobValue(Buffer.concat(parts)), offsets.join(',')];
}
const NEWLINE = Buffer.from('\n');
