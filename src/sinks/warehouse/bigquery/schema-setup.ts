import type { BigQuery, TableMetadata } from '@google-cloud/bigquery';
import type { Logger } from '../../../core/logger.js';
import { bigQueryField } from '../dialect.js';
import type { TableDef } from '../schema.js';
import type { ViewDef } from '../views.js';

/**
 * Creating what the BigQuery warehouse needs through the REST API, for both backends (the query-job
 * one, bigquery.ts, and the Storage Write API one, storage-warehouse.ts): the dataset, the tables
 * (the fact table partitioned by event_date and clustered by content_id) with any column added
 * since, and the views. Idempotent; a concurrent creator's 409 is success. Errors are the client's
 * (the caller classifies them).
 */

export interface SchemaPlan {
  datasetId: string;
  location: string;
  tables: readonly TableDef[];
  views: readonly ViewDef[];
  /**
   * Whether a table declares its (unenforced) primary key: only where the writes keep it unique
   * (BigQuery's optimizer may rely on a declared key, so a key that duplicates can break is not
   * declared). Default: every table.
   */
  declaresKey?: (table: TableDef) => boolean;
}

/** What `ensureSchema` found: the tables it had to create (a fact table re-created orphans offsets). */
export interface SchemaResult {
  created: Set<string>;
}

/** tables.insert body of a table: schema, partitioning, clustering, (unenforced) primary key. */
export function tableMetadata(table: TableDef, declareKey = true): TableMetadata {
  return {
    description: table.description,
    schema: {
      fields: table.columns.map((c) => ({
        name: c.name,
        description: c.description,
        ...bigQueryField(c.type, c.required),
      })),
    },
    ...(table.partitionBy ? { timePartitioning: { type: 'DAY', field: table.partitionBy } } : {}),
    ...(table.clusterBy ? { clustering: { fields: table.clusterBy } } : {}),
    ...(declareKey ? { tableConstraints: { primaryKey: { columns: table.key } } } : {}),
  };
}

export async function ensureSchema(bq: BigQuery, plan: SchemaPlan, log: Logger): Promise<SchemaResult> {
  const dataset = bq.dataset(plan.datasetId, { location: plan.location });
  const [exists] = await dataset.exists();
  if (!exists) await ignoreExists(dataset.create({ location: plan.location }));
  const created = new Set<string>();
  for (const table of plan.tables) {
    const declareKey = plan.declaresKey?.(table) ?? true;
    const ref = dataset.table(table.name);
    const [present] = await ref.exists();
    if (!present) {
      await ignoreExists(dataset.createTable(table.name, tableMetadata(table, declareKey)));
      created.add(table.name);
      continue;
    }
    const meta = (await ref.getMetadata())[0] as TableMetadata;
    const key = meta.tableConstraints?.primaryKey?.columns;
    if (declareKey && key !== undefined && key.join() !== table.key.join()) {
      // The (unenforced) key the optimizer may rely on: a table made when event_id alone was
      // the key holds reused ids once a sequence is reset, so the key is re-declared.
      await ref.setMetadata({ tableConstraints: { ...meta.tableConstraints, primaryKey: { columns: table.key } } });
      log.info({ table: table.name, key: table.key }, 'primary key re-declared');
    } else if (!declareKey && key !== undefined) {
      log.warn(
        { table: table.name, key },
        'this table declares a primary key its writer does not keep unique until compaction: drop it (ALTER TABLE … DROP PRIMARY KEY), docs/warehouse.md',
      );
    }
    const have = new Set((meta.schema?.fields ?? []).map((f) => f.name));
    const missing = tableMetadata(table).schema?.fields?.filter((f) => !have.has(f.name ?? '')) ?? [];
    if (missing.length > 0) {
      const fields = [
        ...(meta.schema?.fields ?? []),
        ...missing.map((f) => ({ ...f, mode: f.mode === 'REQUIRED' ? 'NULLABLE' : f.mode })),
      ];
      await ref.setMetadata({ schema: { fields } });
      log.info({ table: table.name, added: missing.map((f) => f.name) }, 'added missing columns');
    }
  }
  for (const view of plan.views) {
    const ref = dataset.table(view.name);
    const [present] = await ref.exists();
    const definition = { view: { query: view.sql, useLegacySql: false }, description: view.description };
    if (!present) await ignoreExists(dataset.createTable(view.name, definition));
    else {
      const meta = (await ref.getMetadata())[0] as TableMetadata;
      if (meta.view?.query !== view.sql) await ref.setMetadata(definition);
    }
  }
  return { created };
}

async function ignoreExists(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code !== 409) throw err;
  }
}
