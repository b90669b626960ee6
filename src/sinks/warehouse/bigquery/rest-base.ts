import type { BigQuery } from '@google-cloud/bigquery';
import type { Config } from '../../../config/load.js';
import { PipelineError } from '../../../core/errors.js';
import type { Logger } from '../../../core/logger.js';
import type { SinkRecord } from '../../../core/sink-contract.js';
import { classifyBigQueryError, createBigQueryClient, runQueryJob, type JobParameter } from '../bigquery-client.js';
import { bigQueryDialect, type Dialect } from '../dialect.js';
import { checkWarehouseRecord } from '../record-check.js';
import { FACT_TABLE, type TableDef } from '../schema.js';
import type { ViewDef } from '../views.js';
import { ensureSchema } from './schema-setup.js';

/**
 * What both BigQuery backends (the query-job one, ../bigquery.ts, and the Storage Write API one,
 * storage-warehouse.ts) share through the REST API: the client and dataset, the record check, the
 * start position, one query job at a time with its failure kept for `health` (a lost table marks
 * the schema to be made again), and the schema set-up — after which, when the fact table had to be
 * created but its progress table had not, the progress (offsets) is emptied: it would claim rows
 * that are gone.
 */
export abstract class BigQueryRestBase {
  readonly name = 'warehouse';
  protected readonly bq: BigQuery;
  protected readonly d: Dialect;
  protected readonly datasetId: string;
  protected readonly location: string;
  protected schemaReady = false;
  protected lastError: string | null = null;

  protected constructor(config: Config, client: BigQuery | undefined) {
    this.bq = client ?? createBigQueryClient(config);
    this.datasetId = config.BIGQUERY_DATASET_ID;
    this.location = config.BIGQUERY_LOCATION;
    this.d = bigQueryDialect(config.BIGQUERY_PROJECT_ID ?? '', this.datasetId);
  }

  check(record: SinkRecord): PipelineError | null {
    return checkWarehouseRecord(record);
  }

  startPosition(): 'earliest' {
    return 'earliest';
  }

  /** One query job to completion; a failure is classified and recorded. */
  protected async query(
    query: string,
    params: readonly JobParameter[],
    what: string,
  ): Promise<Array<Record<string, unknown>>> {
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

  /**
   * Makes the dataset, `tables` and `views` (schema-setup.ts); `progress` are the tables holding
   * the stored offsets, emptied when the fact table was created but the first of them was not.
   */
  protected async makeSchema(
    log: Logger,
    plan: { tables: readonly TableDef[]; views: readonly ViewDef[]; declaresKey?: (t: TableDef) => boolean },
    progress: readonly TableDef[],
  ): Promise<void> {
    try {
      const { created } = await ensureSchema(
        this.bq,
        { datasetId: this.datasetId, location: this.location, ...plan },
        log,
      );
      if (created.has(FACT_TABLE.name) && progress[0] && !created.has(progress[0].name)) {
        for (const t of progress) await this.query(`DELETE FROM ${this.d.table(t.name)} WHERE TRUE`, [], 'reset');
        log.warn('the fact table was missing: stored offsets deleted, every partition starts over');
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
