import type { BigQuery } from '@google-cloud/bigquery';
import type { Logger } from '../../core/logger.js';
import type { Sink, SinkBatch, SinkContext } from '../../core/sink-contract.js';
import { DEFAULT_MAX_PARAM_BYTES, readOffsetsQuery, writeJobs } from './bigquery-script.js';
import { BigQueryRestBase } from './bigquery/rest-base.js';
import { OFFSETS_TABLE, TABLES } from './schema.js';
import { viewDefinitions } from './views.js';
import { warehouseRows } from './warehouse-metrics.js';

/**
 * The BigQuery warehouse's query-job backend (BIGQUERY_WRITE_API=query; the default is the Storage
 * Write API, bigquery/storage-warehouse.ts).
 *
 * Exactly-once, without the Storage Write API: each batch is ONE query job running a
 * multi-statement transaction (bigquery-script.ts): MERGE the rows into the fact table where their
 * (event_id, event_ts) is not already there (ids are reused after a sequence reset: an id with
 * another event_ts is a new event), upsert content_dim, set the partition's next offset, COMMIT.
 * - A crash (or a lost response) before the COMMIT: BigQuery rolls the transaction back; nothing of
 *   the batch is stored and the old offset stays, so the runtime re-reads it.
 * - A crash after the COMMIT: rows and offset are stored together; the runtime resumes after them.
 * - The same rows sent again (a retry after a lost response, a replay, a backfill): MERGE inserts
 *   only events not yet present, so nothing is duplicated.
 * - Two attempts running at once (a timed-out job still running when its retry starts): both
 *   update the partition's row of the offsets table, so BigQuery aborts one at commit ("concurrent
 *   update", retriable); the retry then sees the other's rows and inserts nothing new.
 * Missing dataset, tables (partitioned by event_date, clustered by content_id) and views are
 * created at start; a table dropped while running surfaces as SINK_STATE_LOST after re-creation.
 */

export interface BigQueryWarehouseOptions {
  /** A ready client (tests); default: one built from the config. */
  client?: BigQuery;
  /** Parameter bytes per transaction before a batch is split (default 4 MiB). */
  maxParamBytes?: number;
}

export class BigQueryWarehouse extends BigQueryRestBase implements Sink {
  private readonly log: Logger;
  private readonly maxParamBytes: number;
  private lastCommitMs: number | null = null;
  private totals = { inserted: 0, duplicates: 0, jobs: 0 };

  constructor(ctx: SinkContext, opts: BigQueryWarehouseOptions = {}) {
    super(ctx.config, opts.client);
    const { config } = ctx;
    this.maxParamBytes = opts.maxParamBytes ?? DEFAULT_MAX_PARAM_BYTES;
    this.log = ctx.log.child({ backend: 'bigquery', dataset: `${config.BIGQUERY_PROJECT_ID}.${this.datasetId}` });
  }

  async start(): Promise<void> {
    await this.ensureSchema();
    this.log.info('BigQuery warehouse ready');
  }

  async storedOffsets(topic: string, partitions: number[]): Promise<Map<number, string>> {
    if (!this.schemaReady) await this.ensureSchema();
    const rows = await this.query(
      readOffsetsQuery(this.d),
      [{ name: 'topic', parameterType: { type: 'STRING' }, parameterValue: { value: topic } }],
      'offsets',
    );
    const wanted = new Set(partitions);
    const out = new Map<number, string>();
    for (const row of rows) {
      const p = Number(row.kafka_partition);
      if (wanted.has(p)) out.set(p, String(row.next_offset));
    }
    return out;
  }

  async write(batch: SinkBatch): Promise<void> {
    if (!this.schemaReady) await this.ensureSchema();
    for (const job of writeJobs(this.d, batch, this.maxParamBytes)) {
      const [result] = await this.query(job.query, job.params, `p${batch.partition}_${job.nextOffset}`);
      const inserted = Number(result?.inserted_rows ?? 0);
      this.lastCommitMs = Date.now();
      this.totals.jobs++;
      this.totals.inserted += inserted;
      this.totals.duplicates += job.rows - inserted;
      warehouseRows().inc({ backend: 'bigquery', outcome: 'inserted' }, inserted);
      if (job.rows > inserted) warehouseRows().inc({ backend: 'bigquery', outcome: 'duplicate' }, job.rows - inserted);
    }
  }

  async health(): Promise<{ ok: boolean; detail?: Record<string, unknown> }> {
    return {
      ok: this.schemaReady && this.lastError === null,
      detail: {
        backend: 'bigquery',
        dataset: this.datasetId,
        lastCommitAt: this.lastCommitMs && new Date(this.lastCommitMs).toISOString(),
        ...this.totals,
        ...(this.lastError ? { error: this.lastError } : {}),
      },
    };
  }

  async close(): Promise<void> {
    // Nothing buffered: every write has committed or failed before close is called.
  }

  /** Creates the dataset, tables, added columns and views that are missing; idempotent. */
  private async ensureSchema(): Promise<void> {
    await this.makeSchema(this.log, { tables: TABLES, views: viewDefinitions(this.d) }, [OFFSETS_TABLE]);
  }
}

export { tableMetadata } from './bigquery/schema-setup.js';
