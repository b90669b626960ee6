// src/sinks/warehouse/duckdb/fast-path/ — the fast path (docs/warehouse.md, "Two write paths").
//
// What: the contract's `writeEncoded`: a Kafka batch's values, undecoded and unchecked, are joined
// into one BLOB and decoded, judged and staged by DuckDB's JSON reader on the stager's own
// connection (stager.ts, encoded-sql.ts), then inserted from the stage in one transaction on the
// writer's connection (this file), while the stager decodes the next batch.
// When: batches read from Kafka of at least 4,096 records (`encodedMinRecords`); never for DLQ
// replays or BigQuery.
// Guarantees: the batch is written exactly as the checked path would write it after decoding and
// `check` (same rows, content_dim and offset; JSON columns equal as JSON), or nothing is written
// and the sink answers `needs-check` — the rules only ever refuse more than `check`.

import type { DuckDBConnection, DuckDBPreparedStatement } from '@duckdb/node-api';
import type { EncodedWriteResult } from '../../../../core/sink-contract.js';
import type { ContentMemo } from '../content-memo.js';
import type { StagedBatch } from './stager.js';
import { storeOffsetSql } from '../sql.js';
import { upsertChangedContent } from '../write-common.js';
import type { Row } from '../../schema.js';

/**
 * The second half of the DuckDB fast path (the contract's `writeEncoded`): a batch decoded and
 * judged by the stager (fast-path/stager.ts) is written in ONE transaction on the writer's
 * connection, like checked/checked-write.ts's:
 *   1. the staged rows whose event (event_id, event_ts) is not stored already are inserted, in offset order (the
 *      batch repeats none: the stager declined it otherwise);
 *   2. content_dim is upserted (only rows `memo` says changed);
 *   3. the partition's next offset is stored; COMMIT.
 * Exactly-once holds as in checked/checked-write.ts: rows and offset in one commit, ids skipped when stored
 * (the lookup runs inside the transaction, and transactions are serialised on the writer's
 * connection). `staged` (the stager's verdict and the writer's insert from its slot) is null for a
 * batch without records: only its offset is stored. The caller
 * serialises calls on the connection and keeps the slot until this returns. Throws what DuckDB
 * threw, after a ROLLBACK.
 */
export async function writeStagedTransaction(
  conn: DuckDBConnection,
  batch: { topic: string; partition: number; nextOffset: string },
  staged: { rows: StagedBatch; insert: DuckDBPreparedStatement } | null,
  memo: ContentMemo,
): Promise<Extract<EncodedWriteResult, { kind: 'written' }> & { inserted: number }> {
  let content: Row[] = [];
  let inserted = 0;
  // Round trips are few on purpose: each waits for the JS thread, which is busy consuming.
  await conn.run('BEGIN TRANSACTION');
  try {
    if (staged !== null) {
      staged.insert.bind([batch.partition, staged.rows.lo, staged.rows.hi]);
      inserted = (await staged.insert.run()).rowsChanged;
      content = await upsertChangedContent(conn, memo, staged.rows.content);
    }
    await conn.run(`${storeOffsetSql(batch.topic, batch.partition, batch.nextOffset)}; COMMIT`);
    memo.committed(content);
    return { kind: 'written', sourceTsMs: staged?.rows.sourceTsMs ?? [], inserted };
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
