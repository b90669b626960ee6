import type { BigQuery } from '@google-cloud/bigquery';
import { PipelineError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Sink, SinkBatch, SinkContext, SinkRecord } from '../../core/sink-contract.js';
import { classifyBigQueryError, createBigQueryClient, runQueryJob } from './bigquery-client.js';
import { DEFAULT_MAX_PARAM_BYTES, readOffsetsQuery, writeJobs, type QueryParameter } from './bigquery-script.js';
import { ensureSchema } from './bigquery/schema-setup.js';
import { bigQueryDialect, type Dialect } from './dialect.js';
import { checkWarehouseRecord } from './record-check.js';
import { FACT_TABLE, OFFSETS_TABLE, TABLES } from './schema.js';
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

export class BigQueryWarehouse implements Sink {
  readonly name = 'warehouse';
  private readonly bq: BigQuery;
  private readonly d: Dialect;
  private readonly datasetId: string;
  private readonly location: string;
  private readonly log: Logger;
  private readonly maxParamBytes: number;
  private schemaReady = false;
  private lastError: string | null = null;
  private lastCommitMs: number | null = null;
  private totals = { inserted: 0, duplicates: 0, jobs: 0 };

  constructor(ctx: SinkContext, opts: BigQueryWarehouseOptions = {}) {
    const { config } = ctx;
    this.bq = opts.client ?? createBigQueryClient(config);
    this.datasetId = config.BIGQUERY_DATASET_ID;
    this.location = config.BIGQUERY_LOCATION;
    this.d = bigQueryDialect(config.BIGQUERY_PROJECT_ID ?? '', this.datasetId);
    this.maxParamBytes = opts.maxParamBytes ?? DEFAULT_MAX_PARAM_BYTES;
    this.log = ctx.log.child({ backend: 'bigquery', dataset: `${config.BIGQUERY_PROJECT_ID}.${this.datasetId}` });
  }

  check(record: SinkRecord): PipelineError | null {
    return checkWarehouseRecord(record);
  }

  startPosition(): 'earliest' {
    return 'earliest';
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

  /** One query job (classified failure recorded for health; a lost table marks the schema to re-make). */
  private async query(query: string, params: QueryParameter[], what: string): Promise<Array<Record<string, unknown>>> {
    try {
      const rows = await runQueryJob(this.bq, this.location, query, params, what);
      this.lastError = null;
      return rows;
    } catch (err) {
      const e = classifyBigQueryError(err, what);
      this.lastError = e.message;
      if (e.code === 'SINK_STATE_LOST') this.schemaReady = false;
      throw e;
    }
  }

  /** Creates the dataset, tables, added columns and views that are missing; idempotent. */
  private async ensureSchema(): Promise<void> {
    try {
      const { created } = await ensureSchema(
        this.bq,
        { datasetId: this.datasetId, location: this.location, tables: TABLES, views: viewDefinitions(this.d) },
        this.log,
      );
      if (created.has(FACT_TABLE.name) && !created.has(OFFSETS_TABLE.name)) {
        // Offsets left without their fact table (it was dropped) claim rows that are gone.
        await this.query(`DELETE FROM ${this.d.table(OFFSETS_TABLE.name)} WHERE TRUE`, [], 'reset_offsets');
        this.log.warn('the fact table was missing: stored offsets deleted, every partition starts over');
      }
      this.schemaReady = true;
    } catch (err) {
      const e = classifyBigQueryError(err, 'schema creation');
      this.lastError = e.message;
      // A 404 while creating is no lost state but a missing parent (project, permission to see it).
      throw e.code === 'SINK_STATE_LOST'
        ? new PipelineError('SERVICE_MISCONFIGURED', e.message, { retriable: true, cause: err })
        : e;
    }
  }
}

export { tableMetadata } from './bigquery/schema-setup.js';
