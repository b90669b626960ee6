import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BigQueryWarehouse } from '../../../src/sinks/warehouse/bigquery.js';
import { createBigQueryClient } from '../../../src/sinks/warehouse/bigquery-client.js';
import { duckdbDialect, bigQueryDialect } from '../../../src/sinks/warehouse/dialect.js';
import { warehouseSinkFactory } from '../../../src/sinks/warehouse/index.js';
import { FACT_TABLE } from '../../../src/sinks/warehouse/schema.js';
import { viewDefinitions } from '../../../src/sinks/warehouse/views.js';
import { type Row } from '../../helpers/fake-bigquery.js';
import { PROJECT, bigQueryTestFile } from './bigquery-fixtures.js';
import { ctxOf } from './warehouse-fixtures.js';

/**
 * The BigQuery warehouse against the local fake of the BigQuery REST API (test/helpers/fake-bigquery.ts):
 * what it creates (dataset, partitioned and clustered tables, views in GoogleSQL, both dialects
 * from one definition), and when it is chosen and how it is configured.
 */

const { env, fake: fakeOf, fresh, started } = bigQueryTestFile();

describe('bigquery warehouse: schema', () => {
  it('creates the dataset, the partitioned and clustered tables and the views, once', async () => {
    const { config, dataset } = fresh();
    const before = fakeOf().requests.length;
    await (await started(config)).close();
    const created = fakeOf().requests.slice(before);
    const datasetInsert = created.find((r) => r.route === 'datasets.insert');
    const ds = datasetInsert?.body as { location?: string; datasetReference?: { datasetId?: string } } | undefined;
    assert.deepEqual([ds?.location, ds?.datasetReference?.datasetId], ['EU', dataset]);
    const tableBodies = created.filter((r) => r.route === 'tables.insert').map((r) => r.body as Row);
    const byId = new Map(tableBodies.map((b) => [(b.tableReference as Row).tableId, b]));
    assert.deepEqual([...byId.keys()].sort(), [
      'content_dim',
      'daily_engagement_summary',
      'engagement_events_enriched',
      'hourly_engagement_trends',
      'warehouse_offsets',
    ]);
    const fact = byId.get('engagement_events_enriched') as Row;
    assert.deepEqual(fact.timePartitioning, { type: 'DAY', field: 'event_date' });
    assert.deepEqual(fact.clustering, { fields: ['content_id'] });
    assert.deepEqual(fact.tableConstraints, { primaryKey: { columns: ['event_id', 'event_ts'] } });
    const fields = (fact.schema as { fields: Row[] }).fields;
    assert.deepEqual(
      fields.map((f) => f.name),
      FACT_TABLE.columns.map((c) => c.name),
    );
    assert.deepEqual(
      fields.find((f) => f.name === 'event_id'),
      {
        name: 'event_id',
        description: 'engagement_events.id (BIGSERIAL); unique together with event_ts (a sequence reset reuses ids)',
        type: 'INT64',
        mode: 'REQUIRED',
      },
    );
    assert.deepEqual(fields.find((f) => f.name === 'quality_flags')?.mode, 'REPEATED');
    assert.equal(fields.find((f) => f.name === 'event_ts')?.type, 'TIMESTAMP');
    assert.equal(byId.get('content_dim')?.timePartitioning, undefined, 'only the fact table is partitioned');
    const daily = (byId.get('daily_engagement_summary') as { view: { query: string; useLegacySql: boolean } }).view;
    assert.equal(daily.useLegacySql, false);
    assert.match(daily.query, new RegExp(`FROM \`${PROJECT}\\.${dataset}\\.engagement_events_enriched\` AS f`));
    assert.match(
      daily.query,
      /SAFE_DIVIDE\(COUNTIF\(f\.event_type = 'finish'\), COUNTIF\(f\.event_type = 'play'\)\) AS completion_rate/,
    );
    assert.doesNotMatch(daily.query, /"|FILTER \(WHERE/, 'no DuckDB syntax left');

    const again = fakeOf().requests.length;
    await (await started(config)).close();
    assert.deepEqual(
      fakeOf()
        .requests.slice(again)
        .filter((r) => r.route.endsWith('insert') || r.route === 'tables.patch'),
      [],
      'a second start creates nothing',
    );
  });

  it('renders both dialects from the same view definitions', () => {
    const duck = viewDefinitions(duckdbDialect);
    const bq = viewDefinitions(bigQueryDialect('p', 'd'));
    assert.deepEqual(
      duck.map((v) => v.name),
      bq.map((v) => v.name),
    );
    // Undo the dialect differences of the BigQuery text: what remains is the DuckDB text.
    const back = (sql: string) =>
      sql
        .replace(/`p\.d\.(\w+)`/g, '"$1"')
        .replace(
          /SAFE_DIVIDE\((COUNTIF\([^)]*\)), (COUNTIF\([^)]*\))\)/g,
          'CASE WHEN ($2) = 0 THEN NULL ELSE CAST($1 AS DOUBLE) / ($2) END',
        )
        .replace(/COUNTIF\(([^)]*)\)/g, 'COUNT(*) FILTER (WHERE $1)')
        .replace(/'(\w+)' NOT IN UNNEST\(([\w.]+)\)/g, "NOT coalesce(list_contains($2, '$1'), false)");
    for (let i = 0; i < duck.length; i++) assert.equal(back(bq[i]?.sql ?? ''), duck[i]?.sql);
  });
});

describe('bigquery warehouse: configuration', () => {
  it('is chosen when BIGQUERY_PROJECT_ID is set, and flushes at BATCH_SIZE or WAREHOUSE_FLUSH_SECONDS', () => {
    // The query-job backend (BIGQUERY_WRITE_API=query); the Storage Write API default: warehouse-bigquery-storage.test.ts.
    const config = { ...env().config, BIGQUERY_WRITE_API: 'query' as const };
    assert.ok(warehouseSinkFactory.create(ctxOf(config)) instanceof BigQueryWarehouse);
    assert.deepEqual(warehouseSinkFactory.batching?.({ ...config, BATCH_SIZE: 5000, WAREHOUSE_FLUSH_SECONDS: 2.5 }), {
      maxRecords: 5000,
      maxWaitMs: 2500,
      paced: false,
    });
    assert.deepEqual(
      warehouseSinkFactory.batching?.({ ...config, BATCH_SIZE: undefined, WAREHOUSE_FLUSH_SECONDS: undefined }),
      { maxRecords: 100, maxWaitMs: 30_000, paced: false },
      'BigQuery by default: 100 rows or 30 s (a query job per batch)',
    );
    assert.deepEqual(
      warehouseSinkFactory.batching?.({
        ...env().config,
        warehouse: 'duckdb',
        BATCH_SIZE: undefined,
        WAREHOUSE_FLUSH_SECONDS: undefined,
      }),
      { maxRecords: 20_000, maxWaitMs: 1000, paced: true },
      'DuckDB by default: paced by its commits, 20,000 rows under load, 1 s at most',
    );
  });

  it('refuses a credentials file that does not exist', () => {
    assert.throws(
      () => createBigQueryClient({ ...env().config, GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/key.json' }),
      { code: 'CONFIG_INVALID' },
    );
  });
});
