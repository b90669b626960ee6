import type { Config } from '../../../src/config/load.js';
import { StorageWarehouse } from '../../../src/sinks/warehouse/bigquery/storage-warehouse.js';
import { FakeBigQuery, type Row } from '../../helpers/fake-bigquery.js';
import { FakeBigQueryStorage } from '../../helpers/fake-bigquery-storage.js';
import { ctxOf } from './warehouse-fixtures.js';

/**
 * Fixtures of the Storage Write API backend's tests: the two local fakes started together (the
 * REST one for the dataset, tables, views and the reads; the gRPC one for the writes, committing
 * into the REST one's tables), a config pointing at both, and readers of what is committed.
 */

export const PROJECT = 'storage-project';

export interface StorageFakes {
  rest: FakeBigQuery;
  storage: FakeBigQueryStorage;
  /** The env overrides that point the sink at both fakes. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startStorageFakes(): Promise<StorageFakes> {
  const rest = await FakeBigQuery.start(PROJECT);
  const storage = await FakeBigQueryStorage.start(rest);
  return {
    rest,
    storage,
    env: {
      BIGQUERY_PROJECT_ID: PROJECT,
      BIGQUERY_API_ENDPOINT: rest.url,
      BIGQUERY_STORAGE_API_ENDPOINT: storage.url,
      BIGQUERY_WRITE_API: 'storage',
    },
    async close() {
      await storage.close();
      await rest.close();
    },
  };
}

/** `base` pointed at the fakes, on dataset `dataset`. */
export function storageConfig(base: Config, fakes: StorageFakes, dataset: string): Config {
  return {
    ...base,
    BIGQUERY_PROJECT_ID: PROJECT,
    BIGQUERY_API_ENDPOINT: fakes.rest.url,
    BIGQUERY_STORAGE_API_ENDPOINT: fakes.storage.url,
    BIGQUERY_WRITE_API: 'storage',
    BIGQUERY_DATASET_ID: dataset,
    warehouse: 'bigquery',
  };
}

export async function startedStorageSink(config: Config): Promise<StorageWarehouse> {
  const sink = new StorageWarehouse(ctxOf(config));
  await sink.start();
  return sink;
}

/** Committed fact rows of `dataset`. */
export function factRows(fakes: StorageFakes, dataset: string): Row[] {
  return fakes.rest.rows(dataset, 'engagement_events_enriched');
}

/** Committed fact rows' event ids, sorted numerically (a duplicate shows twice). */
export function storedIds(fakes: StorageFakes, dataset: string): number[] {
  return factRows(fakes, dataset)
    .map((r) => Number(r.event_id))
    .sort((a, b) => a - b);
}

/** The highest next offset the commit log holds for `partition`. */
export function loggedOffset(fakes: StorageFakes, dataset: string, partition: number): bigint | null {
  const offsets = fakes.rest
    .rows(dataset, 'warehouse_commit_log')
    .filter((r) => Number(r.kafka_partition) === partition)
    .map((r) => BigInt(String(r.next_offset)));
  return offsets.length === 0 ? null : offsets.reduce((a, b) => (a > b ? a : b));
}
