import { after, before } from 'node:test';
import type { EnrichedEvent } from '../../../src/core/types.js';
import { StorageWarehouse } from '../../../src/sinks/warehouse/bigquery/storage-warehouse.js';
import { sinkContractSuite } from '../contract-suite.js';
import { factRows, startStorageFakes, storageConfig, type StorageFakes } from './bigquery-storage-fixtures.js';
import { ctxOf } from './warehouse-fixtures.js';

/**
 * The shared sink contract (test/sinks/contract-suite.ts) for the BigQuery warehouse on the Storage
 * Write API, against the local fakes (REST: test/helpers/fake-bigquery.ts; gRPC:
 * test/helpers/fake-bigquery-storage.ts). The count is of committed fact rows, raw: a row appended
 * twice counts twice (the views' dedupe is not relied on here).
 */

let fakes: StorageFakes;
const env: Record<string, string> = {};

before(async () => {
  fakes = await startStorageFakes();
  Object.assign(env, fakes.env);
});

after(async () => {
  await fakes.close();
});

/** A record the warehouse's `check` rejects. */
const poison = (e: EnrichedEvent): EnrichedEvent => ({ ...e, event_ts: 'not a timestamp' });

sinkContractSuite(
  'warehouse (bigquery, Storage Write API fake)',
  async (testEnv) => {
    const dataset = `storage_${testEnv.id}`;
    return {
      sink: new StorageWarehouse(ctxOf(storageConfig(testEnv.config, fakes, dataset))),
      async count() {
        return factRows(fakes, dataset).length;
      },
      async teardown() {},
    };
  },
  { poison, envOverrides: env, writeConcurrency: 8 },
);
