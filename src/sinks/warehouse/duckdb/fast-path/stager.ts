import { randomBytes } from 'node:crypto';
import {
  blobValue,
  type DuckDBBlobValue,
  type DuckDBConnection,
  type DuckDBInstance,
  type DuckDBPreparedStatement,
} from '@duckdb/node-api';
import { errorMessage, PipelineError } from '../../../../core/errors.js';
import { Semaphore } from '../../../../runtime/semaphore.js';
import type { EncodedBatch } from '../../../../core/sink-contract.js';
import { createEncodedStageSql, decodeStageSql, insertStagedSql, stageVerdictSql } from './encoded-sql.js';
import { classifyDuckDbError } from '../write-common.js';
import type { Row } from '../../schema.js';

/**
 * The first half of the DuckDB fast path (docs/warehouse.md "Two write paths"): decodes a batch of
 * undecoded enriched events into a stage table and judges it, on a connection of its own, so that
 * while the writer's connection runs one batch's transaction the next batch is decoded. DuckDB runs
 * each of these statements on one thread: two connections keep two cores busy where one kept one.
 *
 * Stage tables live in an in-memory database attached for this stager (nothing staged reaches the
 * warehouse file or its WAL), SLOTS of them: a slot holds one batch from its decode to the end of
 * its transaction (`withSlot`), so a third batch waits for a slot. Decodes run one at a time on the
 * stager's connection. The writer's transaction reads the slot (fast-path/encoded-write.ts): it only writes
 * the file, so DuckDB's one-written-database-per-transaction rule holds.
 */

/** Batches between their decode and the end of their transaction: one in the writer, one decoded ahead. */
const SLOTS = 2;

/** What a batch's transaction needs of its judged stage (stageVerdictSql's row, converted). */
export interface StagedBatch {
  /** Smallest and largest event id of the batch. */
  lo: bigint;
  hi: bigint;
  /** Each record's source commit time when it is a stream record, in offset order. */
  sourceTsMs: Array<number | null>;
  /** content_dim's rows of the batch. */
  content: Row[];
}

type ContentTuple = {
  content_id: string;
  content_slug: string;
  content_title: string;
  content_type: string | null;
  length_seconds: bigint | null;
  publish_ts: string | null;
  processed_ts_ms: bigint;
};
/** stageVerdictSql's row: staged, bad, repeated, lo, hi, source times, content rows. */
type Verdict = [bigint, bigint, bigint, bigint | null, bigint | null, Array<number | null>, ContentTuple[]];

export class EncodedStager {
  private readonly free: number[] = Array.from({ length: SLOTS }, (_, i) => i);
  private readonly slots = new Semaphore(SLOTS);
  /** Decodes, one at a time on the stager's connection. */
  private readonly decodes = new Semaphore(1);
  private readonly inserts = new Map<number, Promise<DuckDBPreparedStatement>>();

  private constructor(
    private readonly conn: DuckDBConnection,
    private readonly writer: DuckDBConnection,
    private readonly database: string,
    private readonly statements: ReadonlyArray<{ decode: DuckDBPreparedStatement; verdict: DuckDBPreparedStatement }>,
  ) {}

  /** Attaches the stage database and prepares the stage statements; `writer` is the connection whose transactions read the slots. */
  static async open(instance: DuckDBInstance, writer: DuckDBConnection): Promise<EncodedStager> {
    const conn = await instance.connect();
    const database = `engage_stage_${randomBytes(4).toString('hex')}`;
    try {
      await conn.run(`SET TimeZone = 'UTC'; ATTACH ':memory:' AS ${database}`);
      const statements = [];
      for (let slot = 0; slot < SLOTS; slot++) {
        const table = stageTable(database, slot);
        await conn.run(createEncodedStageSql(table));
        statements.push({
          decode: await conn.prepare(decodeStageSql(table)),
          verdict: await conn.prepare(stageVerdictSql(table)),
        });
      }
      return new EncodedStager(conn, writer, database, statements);
    } catch (err) {
      conn.closeSync();
      throw err;
    }
  }

  /** Runs `fn` with a slot of its own (waiting for one while every slot holds a batch). */
  withSlot<T>(fn: (slot: number) => Promise<T>): Promise<T> {
    return this.slots.run(async () => {
      const slot = this.free.pop();
      if (slot === undefined) throw new Error('no free stage slot'); // the semaphore's permits are the slots
      try {
        return await fn(slot);
      } finally {
        this.free.push(slot);
      }
    });
  }

  /**
   * Decodes `batch` into `slot` and judges it: null when the fast path must decline (a value DuckDB
   * refuses, a row not `ok`, an id repeated in the batch, values and offsets not one to one); the
   * stage otherwise. Throws (classified) for any other DuckDB failure. `batch` has records.
   */
  stage(slot: number, batch: EncodedBatch): Promise<StagedBatch | null> {
    return this.decodes.run(() => this.decodeAndJudge(slot, batch));
  }

  /** The writer's prepared insert from `slot` (insertStagedSql; $1 partition, $2/$3 the id range). */
  insertFrom(slot: number): Promise<DuckDBPreparedStatement> {
    let statement = this.inserts.get(slot);
    if (statement === undefined) {
      statement = this.writer.prepare(insertStagedSql(stageTable(this.database, slot)));
      statement.catch(() => this.inserts.delete(slot));
      this.inserts.set(slot, statement);
    }
    return statement;
  }

  /** Detaches the stage database and closes the connection; for a sink closing normally. */
  async close(): Promise<void> {
    await this.decodes.run(() => this.conn.run(`DETACH ${this.database}`).catch(() => undefined));
    this.closeSync();
  }

  /** Closes the connection at once (the instance is being closed). */
  closeSync(): void {
    try {
      this.conn.closeSync();
    } catch {
      // already closed with its instance
    }
  }

  private async decodeAndJudge(slot: number, batch: EncodedBatch): Promise<StagedBatch | null> {
    const statements = this.statements[slot];
    if (statements === undefined) throw new RangeError(`no stage slot ${slot}`);
    // Deleted rows stay in memory until their database checkpoints (an in-memory one never does by
    // itself: ~850 B per row ever staged, measured); the stage database's checkpoint gives them back.
    await this.conn.run(`DELETE FROM ${stageTable(this.database, slot)}; CHECKPOINT ${this.database}`);
    try {
      statements.decode.bind(stagedParams(batch));
      await statements.decode.run();
    } catch (err) {
      // DuckDB refusing a value (not JSON, a conversion): the checked way judges such records one by one.
      const e = classifyDuckDbError(err, 'write');
      if (e.code === 'SINK_REJECTED') return null;
      throw e.code === 'SINK_STATE_LOST'
        ? new PipelineError('SINK_WRITE_FAILED', `the stage table is gone: ${errorMessage(err)}`, {
            retriable: true,
            cause: err,
          })
        : e;
    }
    const reader = await statements.verdict.runAndReadAll();
    const [count, bad, repeated, lo, hi, sourceTsMs, rows] = (reader.getRowsJS() as Verdict[])[0] as Verdict;
    if (Number(count) !== batch.records.length || bad > 0n || repeated > 0n || lo === null || hi === null) return null;
    return { lo, hi, sourceTsMs, content: rows.map(contentRow) };
  }
}

function stageTable(database: string, slot: number): string {
  return `${database}.encoded_rows_${slot}`;
}

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
