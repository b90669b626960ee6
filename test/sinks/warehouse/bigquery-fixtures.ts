import { after, before } from 'node:test';
import type { Config } from '../../../src/config/load.js';
import { BigQueryWarehouse } from '../../../src/sinks/warehouse/bigquery.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';
import { FakeBigQuery, type Row } from '../../helpers/fake-bigquery.js';
import { ctxOf, whEvent } from './warehouse-fixtures.js';

/**
 * For a test file of the BigQuery warehouse: the local fake of the BigQuery REST API
 * (test/helpers/fake-bigquery.ts) and an isolated test env pointed at it, both started before the
 * file's tests and stopped after them; each `fresh()` dataset is new, so tests never share tables.
 */

/** The project id every test env of these files names. */
export const PROJECT = 'engage-test';

export interface BigQueryTestFile {
  env(): TestEnv;
  fake(): FakeBigQuery;
  /** A config naming a dataset no other test uses. */
  fresh(): { config: Config; dataset: string };
  /** A started warehouse; `maxParamBytes` lowers the request size at which a batch is split. */
  started(config: Config, maxParamBytes?: number): Promise<BigQueryWarehouse>;
}

export function bigQueryTestFile(): BigQueryTestFile {
  let fake: FakeBigQuery | undefined;
  let env: TestEnv | undefined;
  let n = 0;
  before(async () => {
    fake = await FakeBigQuery.start(PROJECT);
    env = await createTestEnv({
      BIGQUERY_PROJECT_ID: PROJECT,
      BIGQUERY_API_ENDPOINT: fake.url,
      BIGQUERY_LOCATION: 'EU',
    });
  });
  after(async () => {
    await fake?.close();
    await env?.cleanup();
  });
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('bigQueryTestFile: used before its before() hook ran');
    return v;
  };
  return {
    env: () => started(env),
    fake: () => started(fake),
    fresh: () => {
      const dataset = `ds_${started(env).id}_${++n}`;
      return { config: { ...started(env).config, BIGQUERY_DATASET_ID: dataset }, dataset };
    },
    started: async (config, maxParamBytes) => {
      const sink = new BigQueryWarehouse(ctxOf(config), { maxParamBytes });
      await sink.start();
      return sink;
    },
  };
}

/** The event ids of `rows`, sorted. */
export const ids = (rows: Row[]) => rows.map((r) => String(r.event_id)).sort();

/** `count` events from id `from` on, alternating between contents A and B. */
export const events = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) =>
    whEvent(from + i, i % 2 ? 'A' : 'B', `u${i}`, 'play', '2024-03-01T10:00:00.000Z', 1000 * i),
  );
