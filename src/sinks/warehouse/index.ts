import path from 'node:path';
import type { Config } from '../../config/load.js';
import type { RetryPolicy } from '../../runtime/retry.js';
import type { RegisteredSinkFactory, Sink, SinkContext } from '../../core/sink-contract.js';
import { BigQueryWarehouse } from './bigquery.js';
import { StorageWarehouse } from './bigquery/storage-warehouse.js';
import { DuckDbWarehouse } from './duckdb/duckdb-warehouse.js';

/**
 * `engage sink warehouse`: DuckDB at DUCKDB_PATH by default, BigQuery when BIGQUERY_PROJECT_ID is
 * set (config.warehouse) — through the Storage Write API (bigquery/, the default) or one query job
 * per batch (bigquery.ts, BIGQUERY_WRITE_API=query). All keep the same schema and views (schema.ts,
 * views.ts) and store the partition offsets atomically with the rows, or decided before them
 * (bigquery/storage-protocol.ts). See docs/warehouse.md.
 */
/** Partitions whose batches may be written at once: DuckDB groups them into one transaction. */
export const DUCKDB_WRITE_CONCURRENCY = 16;
/** Rows per write of a backfill's direct pages into BigQuery (which splits further by parameter bytes). */
export const DIRECT_BATCH_ROWS = 50_000;
/**
 * Rows per write of a backfill's direct pages into DuckDB: one row group (DuckDB's default
 * `row_group_size`). A transaction that fills whole row groups has them written straight to the
 * database file at commit; smaller ones go through the WAL and are written a second time by the
 * checkpoint. Measured over 1,000,000 events: WAL 188 → 8 MB, closing checkpoint 600 → 40 ms, and
 * +8–15 % on the whole run (docs/benchmarks.md history, 2026-11-28).
 */
export const DUCKDB_ROW_GROUP_ROWS = 122_880;

/** Default batch rows per partition: large for DuckDB (its fast path from 4,096), small for BigQuery (seconds per job). */
export const DUCKDB_BATCH_SIZE = 20_000;
export const BIGQUERY_BATCH_SIZE = 100;
/**
 * The Storage Write API's flush is sized by bytes: up to about 8 MiB of proto rows (two AppendRows
 * requests of 4 MiB), at up to 512 B an enriched row takes encoded (the benchmark's rows are 208 B).
 * Fewer, larger flushes mean fewer write streams
 * created (CreateWriteStream has a rate quota) at no cost in bytes.
 */
export const STORAGE_FLUSH_BYTES = 8 * 1024 * 1024;
export const STORAGE_ROW_BYTES_ESTIMATE = 512;
export const STORAGE_BATCH_SIZE = Math.floor(STORAGE_FLUSH_BYTES / STORAGE_ROW_BYTES_ESTIMATE);
/** A flush at least every 10 s per partition: 360 streams an hour per partition at most. */
export const STORAGE_FLUSH_SECONDS = 10;
/** Partitions flushing at once on the Storage Write API (each flush mostly waits on the network). */
export const STORAGE_WRITE_CONCURRENCY = 8;

const storageApi = (config: Config) => config.warehouse === 'bigquery' && config.BIGQUERY_WRITE_API === 'storage';

export const warehouseSinkFactory: RegisteredSinkFactory = {
  name: 'warehouse',
  /** Batches flush within WAREHOUSE_FLUSH_SECONDS (30 s at most), then are written: 45 s leaves the write its margin. */
  operations: {
    order: 20,
    freshnessTargetSeconds: 45,
    runByDefault: () => true,
    destination: (config: Config) =>
      config.warehouse === 'duckdb'
        ? path.resolve(config.DUCKDB_PATH)
        : `BigQuery ${config.BIGQUERY_PROJECT_ID}.${config.BIGQUERY_DATASET_ID}`,
  },
  dedupesByEventId: true,
  /** A backfill's direct pages: one transaction per row group (DuckDB) or 50,000 rows (BigQuery), whatever BATCH_SIZE (a latency knob) says. */
  maxBulkRecords: (config: Config) => (config.warehouse === 'bigquery' ? DIRECT_BATCH_ROWS : DUCKDB_ROW_GROUP_ROWS),
  /**
   * DuckDB commits in milliseconds: its batches are paced by what they cost (a row is visible about
   * one commit after it arrives at low rates) and grow to BATCH_SIZE (20,000) under load, which the
   * fast path needs; WAREHOUSE_FLUSH_SECONDS (1 s) only bounds the wait. A BigQuery batch is a
   * query job of seconds, billed per job: 100 rows or 30 s, unpaced. On the Storage Write API a
   * flush costs a few calls and no query: ≤ 8 MiB of rows (STORAGE_BATCH_SIZE) or 10 s, unpaced (each
   * flush creates a write stream, which is rate-limited).
   */
  batching(config: Config) {
    if (storageApi(config)) {
      return {
        maxRecords: config.BATCH_SIZE ?? STORAGE_BATCH_SIZE,
        maxWaitMs: Math.round((config.WAREHOUSE_FLUSH_SECONDS ?? STORAGE_FLUSH_SECONDS) * 1000),
        paced: false,
      };
    }
    const duckdb = config.warehouse === 'duckdb';
    return {
      maxRecords: config.BATCH_SIZE ?? (duckdb ? DUCKDB_BATCH_SIZE : BIGQUERY_BATCH_SIZE),
      maxWaitMs: Math.round((config.WAREHOUSE_FLUSH_SECONDS ?? (duckdb ? 1 : 30)) * 1000),
      paced: duckdb,
    };
  },
  /**
   * The backoff between attempts while the warehouse fails retriably (an outage is waited out
   * without a bound on attempts: src/runtime/write-splitting.ts): longer for a remote warehouse
   * (a BigQuery incident, credentials being replaced) than for the local file (a lock).
   */
  retryPolicy(config: Config): RetryPolicy {
    return config.warehouse === 'bigquery'
      ? { attempts: Number.MAX_SAFE_INTEGER, baseMs: 500, maxMs: 30000, jitter: 'full' }
      : { attempts: Number.MAX_SAFE_INTEGER, baseMs: 200, maxMs: 10000, jitter: 'full' };
  },
  /**
   * DuckDB groups concurrent partitions' batches (duckdb/duckdb-warehouse.ts); the Storage Write API
   * flushes partitions side by side; the query-job backend writes one batch at a time.
   */
  writeConcurrency(config: Config): number {
    if (storageApi(config)) return STORAGE_WRITE_CONCURRENCY;
    return config.warehouse === 'bigquery' ? 1 : DUCKDB_WRITE_CONCURRENCY;
  },
  create(ctx: SinkContext): Sink {
    if (storageApi(ctx.config)) return new StorageWarehouse(ctx);
    return ctx.config.warehouse === 'bigquery' ? new BigQueryWarehouse(ctx) : new DuckDbWarehouse(ctx);
  },
};
