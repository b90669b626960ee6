import path from 'node:path';
import type { Config } from '../../config/load.js';
import { checkBigQueryWarehouse, formatCheckReport } from './bigquery/check.js';

/**
 * What `engage sink warehouse --check` runs: the BigQuery check (bigquery/check.ts) when
 * BIGQUERY_PROJECT_ID is set, printed one line a step; DuckDB has nothing remote to check.
 * Returns the exit code: 0 when the sink could run as configured, 1 otherwise.
 */
export async function runWarehouseCheck(config: Config, print: (text: string) => void = console.log): Promise<number> {
  if (config.warehouse === 'duckdb') {
    print(`✔ DuckDB at ${path.resolve(config.DUCKDB_PATH)}: a local file, nothing remote to check\nready`);
    return 0;
  }
  print(
    `BigQuery ${config.BIGQUERY_PROJECT_ID}.${config.BIGQUERY_DATASET_ID} (${config.BIGQUERY_LOCATION}), writes through ${config.BIGQUERY_WRITE_API === 'storage' ? 'the Storage Write API' : 'query jobs'}`,
  );
  const report = await checkBigQueryWarehouse(config);
  print(formatCheckReport(report));
  return report.ok ? 0 : 1;
}
