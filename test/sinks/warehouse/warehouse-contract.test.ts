import { after, before } from 'node:test';
import type { EnrichedEvent } from '../../../src/core/types.js';
import { DuckDbWarehouse } from '../../../src/sinks/warehouse/duckdb/duckdb-warehouse.js';
import { BigQueryWarehouse } from '../../../src/sinks/warehouse/bigquery.js';
import { FakeBigQuery } from '../../helpers/fake-bigquery.js';
import { sinkContractSuite } from '../contract-suite.js';
import { ctxOf, openReader } from './warehouse-fixtures.js';

/**
 * The shared sink contract (test/sinks/contract-suite.ts) on the real stack, for both warehouse
 * backends: DuckDB on a real file, BigQuery against the local fake (its MERGE emulation is what
 * makes a re-delivery count once, as BigQuery's MERGE would).
 */

/** The contract's view of a DuckDB sink: the rows in its file, whether the sink is open or not. */
function duckSubject(sink: DuckDbWarehouse, file: string) {
  return {
    sink,
    async count() {
      const r = await openReader(file);
      try {
        const [row] = await r.rows(`SELECT count(*) AS n FROM engagement_events_enriched`);
        return Number(row?.n);
      } catch {
        return 0; // not created yet
      } finally {
        r.close();
      }
    },
    async teardown() {},
  };
}

/** A record the warehouse's `check` rejects (it would go to the DLQ, the rest flowing). */
const poison = (e: EnrichedEvent): EnrichedEvent => ({ ...e, event_ts: 'not a timestamp' });

sinkContractSuite(
  'warehouse (duckdb)',
  async (env) => duckSubject(new DuckDbWarehouse(ctxOf(env.config)), env.config.DUCKDB_PATH),
  { poison },
);

/** The same, with every batch offered to the fast path (writeEncoded), however small. */
class FastForEveryBatch extends DuckDbWarehouse {
  override readonly encodedMinRecords = 1;
}

sinkContractSuite(
  'warehouse (duckdb, fast path for every batch)',
  async (env) => duckSubject(new FastForEveryBatch(ctxOf(env.config)), env.config.DUCKDB_PATH),
  { poison },
);

let fake: FakeBigQuery;
const bigQueryEnv: Record<string, string> = {
  BIGQUERY_PROJECT_ID: 'contract-project',
  BIGQUERY_DATASET_ID: 'contract_ds',
};

before(async () => {
  fake = await FakeBigQuery.start('contract-project');
  bigQueryEnv.BIGQUERY_API_ENDPOINT = fake.url;
});

after(async () => {
  await fake.close();
});

sinkContractSuite(
  'warehouse (bigquery fake)',
  async (env) => {
    // One dataset per test env (a restart re-creates the sink over the same one).
    const config = { ...env.config, BIGQUERY_DATASET_ID: `contract_${env.id}` };
    const dataset = config.BIGQUERY_DATASET_ID;
    return {
      sink: new BigQueryWarehouse(ctxOf(config)),
      async count() {
        return fake.rows(dataset, 'engagement_events_enriched').length;
      },
      async teardown() {},
    };
  },
  { poison, envOverrides: bigQueryEnv },
);
