// src/sinks/warehouse/duckdb/ — the DuckDB backend of the warehouse sink (docs/warehouse.md).
//
// What: the sink class (this file: lifecycle, schema, stored offsets, group commit) and three
// write paths, one folder each, which all end in ONE transaction on the single writer connection
// that stores rows, changed content_dim rows and the position together:
//   checked/      decoded records that passed `check` (`write`): every stream batch below 4,096
//                 records, every batch the other two decline, DLQ replays;
//   fast-path/    undecoded Kafka batches of 4,096 records or more (`writeEncoded`), decoded and
//                 judged by DuckDB's JSON reader on a second connection of their own;
//   bulk-import/  CSV pages from PostgreSQL's COPY (`importSourcePage`) for `--direct warehouse`.
// Shared by the three, here: sql.ts (DDL, offsets, the stored-event lookup), write-common.ts (the
// content_dim upsert and the reading of DuckDB errors), content-memo.ts.
// Guarantee, whichever path: a batch's rows and its offset commit together or not at all, and an
// event (event_id, event_ts) already stored is never stored again. The fast path and the bulk
// import only ever refuse more than the checked path does: they write a batch exactly as the
// checked path would, or nothing (the batch then goes the checked way).

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { errorMessage, PipelineError } from '../../../core/errors.js';
import type { Logger } from '../../../core/logger.js';
import type {
  EncodedBatch,
  EncodedWriteResult,
  Sink,
  SinkBatch,
  SinkContext,
  SinkRecord,
} from '../../../core/sink-contract.js';
import type { SourceImporter, SourceImportResult, SourcePage } from '../../source-import.js';
import {
  addMissingColumnsSql,
  createStagesSql,
  createTablesSql,
  createViewsSql,
  factColumnOrderSql,
  readOffsetsSql,
} from './sql.js';
import { ContentMemo } from './content-memo.js';
import { writeStagedTransaction } from './fast-path/encoded-write.js';
import { EncodedStager } from './fast-path/stager.js';
import { importSourceTransaction } from './bulk-import/bulk-import.js';
import { writeTransaction } from './checked/checked-write.js';
import { classifyDuckDbError } from './write-common.js';
import { checkWarehouseRecord } from '../record-check.js';
import { FACT_TABLE, OFFSETS_TABLE, TABLES } from '../schema.js';
import { warehouseRows } from '../warehouse-metrics.js';

/**
 * The DuckDB warehouse (the default backend), a file at DUCKDB_PATH: lifecycle, schema, offsets.
 *
 * Group commit: the runtime may call `write` for several partitions at once (the factory's
 * writeConcurrency); batches that arrive while a transaction runs are written together in the
 * next ONE transaction (checked/checked-write.ts), rows and every batch's offset committed together, so a
 * transaction's fixed cost (content_dim upsert, offsets, commit) is paid once per group, not once
 * per partition. Each `write` resolves when the transaction holding its batch has committed. If a
 * group is refused for its data (SINK_REJECTED), its batches are written again one per transaction,
 * so only the batch that holds the bad data fails; any other error fails every batch of the group
 * alike (the runtime retries each, or re-positions them all after SINK_STATE_LOST).
 *
 * Single writer: DuckDB lets one process open the file read-write; this sink is that process, and
 * it serialises its own writes on its one writer connection (the (event_id, event_ts) lookup relies on it); the
 * fast path's stager (fast-path/stager.ts) has a second connection, which only decodes into memory. Other
 * processes read a copy, or the file once the sink has stopped (see docs/warehouse.md). Within the
 * process, the instance comes from DuckDB's instance cache, so in-process readers share it.
 */
export class DuckDbWarehouse implements Sink, SourceImporter {
  readonly name = 'warehouse';
  private readonly file: string;
  private readonly log: Logger;
  private readonly checkpointMb: number | undefined;
  private readonly memoryLimit: string | undefined;
  private readonly threads: number | undefined;
  private instance: DuckDBInstance | null = null;
  private conn: DuckDBConnection | null = null;
  /** The fast path's decoder, on a connection of its own; opened and closed with `conn`. */
  private stager: EncodedStager | null = null;
  /** Serialises transactions on the one connection. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Batches waiting for the next group transaction. */
  private pending: Array<{ batch: SinkBatch; resolve(): void; reject(err: unknown): void }> = [];
  private broken: string | null = null;
  private lastCommitMs: number | null = null;
  private totals = { inserted: 0, duplicates: 0, batches: 0 };
  /** content_dim as this process committed it (cleared at every open): unchanged content is not upserted again. */
  private readonly contentMemo = new ContentMemo();

  constructor(ctx: SinkContext) {
    this.file = path.resolve(ctx.config.DUCKDB_PATH);
    this.checkpointMb = ctx.config.DUCKDB_CHECKPOINT_MB;
    this.memoryLimit = ctx.config.DUCKDB_MEMORY_LIMIT;
    this.threads = ctx.config.DUCKDB_THREADS;
    this.log = ctx.log.child({ backend: 'duckdb', file: this.file });
  }

  check(record: SinkRecord): PipelineError | null {
    return checkWarehouseRecord(record);
  }

  startPosition(): 'earliest' {
    return 'earliest';
  }

  async start(): Promise<void> {
    await this.serial(() => this.open());
    this.log.info('DuckDB warehouse ready');
  }

  async storedOffsets(topic: string, partitions: number[]): Promise<Map<number, string>> {
    return this.serial(async () => {
      const conn = await this.connection();
      const reader = await conn.runAndReadAll(readOffsetsSql(), [topic]);
      const wanted = new Set(partitions);
      const out = new Map<number, string>();
      for (const [p, next] of reader.getRowsJS() as Array<[number | bigint, string]>) {
        if (wanted.has(Number(p))) out.set(Number(p), next);
      }
      return out;
    });
  }

  write(batch: SinkBatch): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ batch, resolve, reject });
      void this.serial(() => this.writeGroup());
    });
  }

  /**
   * Batches smaller than this take the checked way: the fast path pays a fixed cost per batch of a
   * few ms of DuckDB time whatever its size (its statements are prepared once per connection; they
   * cost ~15–20 ms a batch when planned each time), and its CPU per row came level with the
   * checked path's at ~2,500 rows a batch and below it from 5,000 (docs/benchmarks.md history,
   * 2026-11-28). So the default `BATCH_SIZE` of 100 keeps the checked way, with its group commit;
   * full batches of BATCH_SIZE 20,000 (the benches) go the fast way.
   */
  readonly encodedMinRecords: number = 4096;

  /**
   * The fast path: the batch is decoded and judged on the stager's connection (fast-path/stager.ts),
   * which may run while another batch's transaction does, then written in one transaction in turn
   * with `write`'s groups (fast-path/encoded-write.ts).
   */
  async writeEncoded(batch: EncodedBatch): Promise<EncodedWriteResult> {
    const n = batch.records.length;
    if (n === 0)
      return this.serial(() =>
        this.transaction(0, 1, (conn) => writeStagedTransaction(conn, batch, null, this.contentMemo)),
      );
    const stager = this.stager ?? (await this.serial(async () => (await this.connection(), this.stager)));
    if (stager === null)
      throw new PipelineError('SINK_WRITE_FAILED', 'the DuckDB warehouse is not open', { retriable: true });
    return stager.withSlot(async (slot) => {
      const staged = await stager.stage(slot, batch);
      if (staged === null) return { kind: 'needs-check' };
      return this.serial(async () => {
        await this.connection(); // re-opened first when broken, with a new stager: the slot is gone then
        if (this.stager !== stager)
          throw new PipelineError(
            'SINK_WRITE_FAILED',
            'the DuckDB warehouse was re-opened while the batch was staged',
            { retriable: true },
          );
        const insert = await stager.insertFrom(slot);
        const result = await this.transaction(n, 1, (conn) =>
          writeStagedTransaction(conn, batch, { rows: staged, insert }, this.contentMemo),
        );
        return { kind: 'written', sourceTsMs: result.sourceTsMs };
      });
    });
  }

  /** The bulk import for the direct backfill (bulk-import/bulk-import.ts): one page per transaction, in turn with the writes. */
  importSourcePage(page: SourcePage): Promise<SourceImportResult> {
    return this.serial(async () => {
      const result = await this.transaction(0, 1, async (conn) => {
        const r = await importSourceTransaction(conn, page, this.contentMemo);
        return { ...r, records: r.rows };
      });
      return result.kind === 'written'
        ? { kind: 'written', rows: result.rows, inserted: result.inserted }
        : { kind: 'declined', rows: result.rows };
    });
  }

  async health(): Promise<{ ok: boolean; detail?: Record<string, unknown> }> {
    return {
      ok: this.broken === null && this.conn !== null,
      detail: {
        backend: 'duckdb',
        file: this.file,
        lastCommitAt: this.lastCommitMs && new Date(this.lastCommitMs).toISOString(),
        ...this.totals,
        ...(this.broken ? { error: this.broken } : {}),
      },
    };
  }

  async close(): Promise<void> {
    await this.serial(async () => {
      await this.stager?.close();
      this.stager = null;
      if (this.conn && this.broken === null)
        await this.conn
          .run('CHECKPOINT')
          .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'checkpoint on close failed'));
      this.release();
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async open(): Promise<void> {
    mkdirSync(path.dirname(this.file), { recursive: true });
    try {
      this.contentMemo.clear();
      this.instance = await DuckDBInstance.fromCache(this.file);
      this.conn = await this.instance.connect();
      await this.conn.run(`SET TimeZone = 'UTC'`);
      // Instance-wide settings (every connection of this process to the file); a hand-built
      // partial config, as a test's child process uses, keeps DuckDB's own defaults.
      // A WAL this large before DuckDB checkpoints it: fewer, larger checkpoints (docs/warehouse.md).
      if (this.checkpointMb) await this.conn.run(`SET checkpoint_threshold = '${this.checkpointMb}MB'`);
      if (this.memoryLimit) await this.conn.run(`SET memory_limit = '${this.memoryLimit}'`);
      // 1 by default: beside the busy JS thread, DuckDB's second thread cost more CPU than it saved (docs/warehouse.md).
      if (this.threads) await this.conn.run(`SET threads = ${this.threads}`);
      await this.ensureSchema(this.conn);
      this.stager = await EncodedStager.open(this.instance, this.conn);
      this.broken = null;
    } catch (err) {
      this.release();
      throw classifyDuckDbError(err, 'open');
    }
  }

  /**
   * Creates what is missing (tables, added columns, views, staging); safe to run at every start.
   * Offsets left without their fact table (it was dropped) are deleted: the rows they claim are gone.
   */
  private async ensureSchema(conn: DuckDBConnection): Promise<void> {
    const present = await conn.runAndReadAll(
      `SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = 'main'`,
    );
    const before = new Set((present.getRowsJS() as Array<[string]>).map(([t]) => t));
    for (const sql of createTablesSql()) await conn.run(sql);
    if (!before.has(FACT_TABLE.name) && before.has(OFFSETS_TABLE.name)) {
      await conn.run(`DELETE FROM ${OFFSETS_TABLE.name}`);
      this.log.warn('the fact table was missing: stored offsets deleted, every partition starts over');
    }
    for (const table of TABLES) {
      const reader = await conn.runAndReadAll(
        `SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = $1`,
        [table.name],
      );
      const existing = new Set((reader.getRowsJS() as Array<[string]>).map(([c]) => c));
      for (const sql of addMissingColumnsSql(table, existing)) await conn.run(sql);
    }
    for (const sql of [...createViewsSql(), ...createStagesSql()]) await conn.run(sql);
    const order = (await conn.runAndReadAll(factColumnOrderSql())).getRowsJS().map(([c]) => String(c));
    if (order.join() !== FACT_TABLE.columns.map((c) => c.name).join()) {
      throw new PipelineError(
        'SERVICE_MISCONFIGURED',
        `${FACT_TABLE.name} columns are not in the schema's order (the bulk append writes by position): ${order.join(', ')}`,
      );
    }
  }

  private async connection(): Promise<DuckDBConnection> {
    if (this.broken !== null || this.conn === null) {
      this.release();
      await this.open();
    }
    if (this.conn === null)
      throw new PipelineError('SINK_WRITE_FAILED', 'DuckDB connection is not open', { retriable: true });
    return this.conn;
  }

  private release(): void {
    this.stager?.closeSync();
    this.stager = null;
    try {
      this.conn?.closeSync();
      this.instance?.closeSync();
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'closing DuckDB failed');
    }
    this.conn = null;
    this.instance = null;
  }

  /** Writes every batch queued so far in one transaction (nothing when an earlier call took them). */
  private async writeGroup(): Promise<void> {
    const group = this.pending.splice(0);
    if (group.length === 0) return;
    try {
      await this.writeBatches(group.map((g) => g.batch));
      for (const g of group) g.resolve();
    } catch (err) {
      if (group.length === 1 || !(err instanceof PipelineError) || err.code !== 'SINK_REJECTED') {
        for (const g of group) g.reject(err);
        return;
      }
      for (const g of group) await this.writeBatches([g.batch]).then(g.resolve, g.reject);
    }
  }

  private async writeBatches(batches: SinkBatch[]): Promise<void> {
    const records = batches.reduce((n, b) => n + b.records.length, 0);
    await this.transaction(records, batches.length, async (conn) => {
      const inserted = await writeTransaction(conn, batches, this.contentMemo);
      return { kind: 'written', inserted };
    });
  }

  /**
   * Runs one write transaction on the connection (re-opened first when broken) and counts what it
   * stored: `records` handed over (or the result's, when only the transaction knew), of which
   * `inserted` new (the rest were stored already).
   */
  private async transaction<T extends { kind: string; inserted: number; records?: number }>(
    records: number,
    batches: number,
    fn: (conn: DuckDBConnection) => Promise<T>,
  ): Promise<T> {
    const conn = await this.connection();
    let result: T;
    try {
      result = await fn(conn);
    } catch (err) {
      const e = classifyDuckDbError(err, 'write');
      // Re-open before the next call: after a FATAL error the database is invalidated; after a
      // missing table, re-opening re-creates the schema before the runtime reads the offsets.
      if (/FATAL|invalidated/i.test(errorMessage(err)) || e.code === 'SINK_STATE_LOST') this.broken = e.message;
      throw e;
    }
    if (result.kind !== 'written') return result;
    const inserted = result.inserted;
    this.lastCommitMs = Date.now();
    const duplicates = (result.records ?? records) - inserted;
    this.totals.inserted += inserted;
    this.totals.duplicates += duplicates;
    this.totals.batches += batches;
    warehouseRows().inc({ backend: 'duckdb', outcome: 'inserted' }, inserted);
    if (duplicates > 0) warehouseRows().inc({ backend: 'duckdb', outcome: 'duplicate' }, duplicates);
    return result;
  }
}
