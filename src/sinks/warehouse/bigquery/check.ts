import { existsSync, readFileSync } from 'node:fs';
import { managedwriter } from '@google-cloud/bigquery-storage';
import type { TableMetadata } from '@google-cloud/bigquery';
import type { Config } from '../../../config/load.js';
import { errorMessage } from '../../../core/errors.js';
import { createBigQueryClient, credentialsFile } from '../bigquery-client.js';
import { bigQueryDialect } from '../dialect.js';
import { CONTENT_DIM, FACT_TABLE, OFFSETS_TABLE } from '../schema.js';
import { viewDefinitions } from '../views.js';
import { COMMIT_LOG, readDecisionsQuery } from './commit-log.js';
import { protoDescriptor } from './row-encoding.js';
import { tableMetadata } from './schema-setup.js';
import { classifyStorageError, createWriterClient } from './storage-client.js';

/**
 * `engage sink warehouse --check`: what the BigQuery warehouse would find and do, without changing
 * anything a reader can see — credentials, dataset, tables (schema, partitioning, clustering),
 * views, the read at assignment (a dry-run query job: permission and bytes it would scan) and the
 * write path (a row appended to a PENDING stream of the commit log, finalized and never committed:
 * invisible, and discarded by BigQuery). Each step is one line; `ok` is false when the sink could
 * not run as configured, and the failing line says what to do.
 */

export interface CheckLine {
  step: string;
  /** ok: as needed; create: missing, the sink creates it at start; fail: the sink cannot run. */
  status: 'ok' | 'create' | 'fail';
  detail: string;
}

export interface CheckReport {
  ok: boolean;
  lines: CheckLine[];
}

/** What each write API needs: the Storage Write API adds the commit log and reads through the deduping views. */
const TABLES = {
  storage: [FACT_TABLE, CONTENT_DIM, OFFSETS_TABLE, COMMIT_LOG],
  query: [FACT_TABLE, CONTENT_DIM, OFFSETS_TABLE],
};

function credentialsLine(config: Config): CheckLine {
  const file = credentialsFile(config);
  if (!file) {
    return config.BIGQUERY_STORAGE_API_ENDPOINT?.startsWith('http:')
      ? { step: 'credentials', status: 'ok', detail: 'none: a plaintext local endpoint' }
      : {
          step: 'credentials',
          status: 'ok',
          detail: 'application-default credentials (gcloud auth, or the metadata server)',
        };
  }
  if (!existsSync(file))
    return {
      step: 'credentials',
      status: 'fail',
      detail: `${file}: no such file — set GOOGLE_APPLICATION_CREDENTIALS to a service-account key JSON`,
    };
  try {
    const key = JSON.parse(readFileSync(file, 'utf8')) as { client_email?: string; type?: string };
    return {
      step: 'credentials',
      status: 'ok',
      detail: `${file} (${key.type ?? 'key'} ${key.client_email ?? ''})`.trim(),
    };
  } catch (err) {
    return {
      step: 'credentials',
      status: 'fail',
      detail: `${file} is not JSON (${errorMessage(err)}): download the key again`,
    };
  }
}

export async function checkBigQueryWarehouse(config: Config): Promise<CheckReport> {
  const lines: CheckLine[] = [credentialsLine(config)];
  const fail = (step: string, err: unknown, fix: string) =>
    lines.push({ step, status: 'fail', detail: `${errorMessage(err)} — ${fix}` });
  const project = config.BIGQUERY_PROJECT_ID ?? '';
  const datasetId = config.BIGQUERY_DATASET_ID;
  const d = bigQueryDialect(project, datasetId);
  if (lines[0]?.status === 'fail') return { ok: false, lines };
  const bq = createBigQueryClient(config);
  const dataset = bq.dataset(datasetId, { location: config.BIGQUERY_LOCATION });
  const present = new Set<string>();
  try {
    const [exists] = await dataset.exists();
    lines.push(
      exists
        ? { step: 'dataset', status: 'ok', detail: `${project}.${datasetId}` }
        : {
            step: 'dataset',
            status: 'create',
            detail: `${project}.${datasetId} in ${config.BIGQUERY_LOCATION} (needs bigquery.datasets.create)`,
          },
    );
    const storage = config.BIGQUERY_WRITE_API === 'storage';
    for (const table of exists ? TABLES[config.BIGQUERY_WRITE_API] : []) {
      const ref = dataset.table(table.name);
      const [has] = await ref.exists();
      if (!has) {
        lines.push({
          step: `table ${table.name}`,
          status: 'create',
          detail: describeTable(table.name, tableMetadata(table)),
        });
        continue;
      }
      present.add(table.name);
      const meta = (await ref.getMetadata())[0] as TableMetadata;
      const have = new Set((meta.schema?.fields ?? []).map((f) => f.name));
      const missing = table.columns.filter((c) => !have.has(c.name)).map((c) => c.name);
      lines.push({
        step: `table ${table.name}`,
        status: missing.length ? 'create' : 'ok',
        detail: missing.length ? `columns to add: ${missing.join(', ')}` : describeTable(table.name, meta),
      });
    }
    for (const view of exists ? viewDefinitions(d, { dedupe: storage }) : []) {
      const [has] = await dataset.table(view.name).exists();
      const same = has && ((await dataset.table(view.name).getMetadata())[0] as TableMetadata).view?.query === view.sql;
      lines.push({
        step: `view ${view.name}`,
        status: same ? 'ok' : 'create',
        detail: same ? 'up to date' : has ? 'to be replaced (one row per event identity)' : 'to be created',
      });
    }
  } catch (err) {
    fail(
      'dataset',
      err,
      'check BIGQUERY_PROJECT_ID, the credentials and the role (BigQuery Data Editor on the dataset, Job User on the project)',
    );
    return { ok: false, lines };
  }
  if (config.BIGQUERY_WRITE_API === 'query') {
    lines.push({
      step: 'write path',
      status: 'ok',
      detail: 'query jobs (BIGQUERY_WRITE_API=query): not tried, a job would write',
    });
  } else if (present.has(COMMIT_LOG.name)) {
    try {
      const [job] = await bq.createQueryJob({
        query: readDecisionsQuery(d),
        queryParameters: [
          { name: 'topic', parameterType: { type: 'STRING' }, parameterValue: { value: config.KAFKA_TOPIC_ENRICHED } },
        ],
        parameterMode: 'NAMED',
        useLegacySql: false,
        location: config.BIGQUERY_LOCATION,
        dryRun: true,
      });
      const bytes = job.metadata?.statistics?.totalBytesProcessed;
      lines.push({
        step: 'read at assignment',
        status: 'ok',
        detail: `dry run${bytes === undefined ? '' : `: ${String(bytes)} bytes`}`,
      });
    } catch (err) {
      fail('read at assignment', err, 'grant BigQuery Job User on the project');
    }
    lines.push(await checkWritePath(config, project, datasetId));
  } else
    lines.push({
      step: 'write path',
      status: 'ok',
      detail: 'not tried: the tables do not exist yet (the sink creates them at start)',
    });
  return { ok: lines.every((l) => l.status !== 'fail'), lines };
}

/** A row appended to a PENDING stream of the commit log, finalized and never committed. */
async function checkWritePath(config: Config, project: string, datasetId: string): Promise<CheckLine> {
  const step = 'write path (Storage Write API)';
  let client: ReturnType<typeof createWriterClient> | null = null;
  try {
    client = createWriterClient(config);
    const connection = await client.createStreamConnection({
      streamType: managedwriter.PendingStream,
      destinationTable: `projects/${project}/datasets/${datasetId}/tables/${COMMIT_LOG.name}`,
    });
    connection.onConnectionError(() => undefined);
    const writer = new managedwriter.JSONWriter({ connection, protoDescriptor: protoDescriptor(COMMIT_LOG) });
    const row = {
      topic: '(check)',
      kafka_partition: '-1',
      next_offset: '-1',
      fact_rows: '0',
      writer: 'engage sink warehouse --check',
      committed_at: `${BigInt(Date.now()) * 1000n}`,
    };
    const res = await writer.appendRows([row], 0).getResult();
    if (res.error) throw classifyStorageError({ ...res.error, rowErrors: res.rowErrors }, 'test append');
    await connection.finalize();
    return {
      step,
      status: 'ok',
      detail: `appended to ${connection.getStreamId()} (PENDING, never committed: nothing visible)`,
    };
  } catch (err) {
    return {
      step,
      status: 'fail',
      detail: `${errorMessage(err)} — grant bigquery.tables.updateData on the dataset (BigQuery Data Editor)`,
    };
  } finally {
    client?.close();
  }
}

function describeTable(name: string, meta: TableMetadata): string {
  const parts = [`${meta.schema?.fields?.length ?? 0} columns`];
  if (meta.timePartitioning)
    parts.push(`partitioned by ${meta.timePartitioning.field ?? '_PARTITIONTIME'} (${meta.timePartitioning.type})`);
  if (meta.clustering?.fields?.length) parts.push(`clustered by ${meta.clustering.fields.join(', ')}`);
  return `${name}: ${parts.join(', ')}`;
}

/** The report as lines for a terminal: one per step, then the verdict. */
export function formatCheckReport(report: CheckReport): string {
  const mark = { ok: '✔', create: '+', fail: '✖' } as const;
  const body = report.lines.map((l) => `${mark[l.status]} ${l.step}: ${l.detail}`);
  const verdict = report.ok
    ? report.lines.some((l) => l.status === 'create')
      ? 'ready: `engage sink warehouse` creates what is marked +'
      : 'ready'
    : 'not ready: fix the lines marked ✖';
  return [...body, verdict].join('\n');
}
