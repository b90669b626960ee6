import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Config } from '../../src/config/load.js';
import { PipelineError } from '../../src/core/errors.js';
import type { SinkBatch } from '../../src/core/sink-contract.js';
import { BigQueryWarehouse } from '../../src/sinks/warehouse/bigquery.js';
import { createBigQueryClient } from '../../src/sinks/warehouse/bigquery-client.js';
import { duckdbDialect, bigQueryDialect } from '../../src/sinks/warehouse/dialect.js';
import { warehouseSinkFactory } from '../../src/sinks/warehouse/index.js';
import { FACT_TABLE } from '../../src/sinks/warehouse/schema.js';
import { viewDefinitions } from '../../src/sinks/warehouse/views.js';
import { FakeBigQuery, type Row } from '../helpers/fake-bigquery.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { batchOf, ctxOf, KNOWN_EVENTS, whEvent } from './warehouse-fixtures.js';

/**
 * The BigQuery warehouse against the local fake of the BigQuery REST API (test/helpers/fake-bigquery.ts):
 * what it creates (dataset, partitioned and clustered tables, views in GoogleSQL), what one batch
 * sends (one transaction job: MERGE rows / content / offsets), exactly-once across retries, lost
 * responses and split batches, and how failures surface (retriable or not).
 */

const PROJECT = 'engage-test';
let fake: FakeBigQuery;
let env: TestEnv;
let n = 0;
const TOPIC = 'enriched';

before(async () => {
  fake = await FakeBigQuery.start(PROJECT);
  env = await createTestEnv({ BIGQUERY_PROJECT_ID: PROJECT, BIGQUERY_API_ENDPOINT: fake.url, BIGQUERY_LOCATION: 'EU' });
});

after(async () => {
  await fake.close();
  await env.cleanup();
});

function fresh(): { config: Config; dataset: string } {
  const dataset = `ds_${env.id}_${++n}`;
  return { config: { ...env.config, BIGQUERY_DATASET_ID: dataset }, dataset };
}

async function started(config: Config, maxParamBytes?: number): Promise<BigQueryWarehouse> {
  const sink = new BigQueryWarehouse(ctxOf(config), { maxParamBytes });
  await sink.start();
  return sink;
}

const ids = (rows: Row[]) => rows.map((r) => String(r.event_id)).sort();
const events = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) =>
    whEvent(from + i, i % 2 ? 'A' : 'B', `u${i}`, 'play', '2024-03-01T10:00:00.000Z', 1000 * i),
  );

describe('bigquery warehouse: schema', () => {
  it('creates the dataset, the partitioned and clustered tables and the views, once', async () => {
    const { config, dataset } = fresh();
    const before = fake.requests.length;
    await (await started(config)).close();
    const created = fake.requests.slice(before);
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

    const again = fake.requests.length;
    await (await started(config)).close();
    assert.deepEqual(
      fake.requests.slice(again).filter((r) => r.route.endsWith('insert') || r.route === 'tables.patch'),
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

describe('bigquery warehouse: writes', () => {
  it('sends one transaction job per batch, with the rows as typed parameters', async () => {
    const { config, dataset } = fresh();
    const sink = await started(config);
    const jobsBefore = fake.requestsOf('jobs.insert').length;
    await sink.write(batchOf(TOPIC, 3, KNOWN_EVENTS, 100));
    const jobs = fake.requestsOf('jobs.insert').slice(jobsBefore);
    assert.equal(jobs.length, 1);
    const q = (
      jobs[0]?.body as {
        configuration: {
          query: {
            query: string;
            queryParameters: Array<{ name: string; parameterType: Row; parameterValue: Row }>;
            useLegacySql: boolean;
          };
        };
      }
    ).configuration.query;
    assert.equal(q.useLegacySql, false);
    assert.match(
      q.query,
      /^DECLARE inserted_rows INT64 DEFAULT 0;\nBEGIN TRANSACTION;\nMERGE `[^`]+\.engagement_events_enriched` AS t/,
    );
    assert.match(
      q.query,
      /ON t\.event_id = s\.event_id AND t\.event_ts = s\.event_ts AND t\.event_date BETWEEN @min_date AND @max_date\nWHEN NOT MATCHED THEN INSERT/,
    );
    assert.match(q.query, /COMMIT TRANSACTION;\nSELECT inserted_rows;$/);
    const params = new Map(q.queryParameters.map((p) => [p.name, p]));
    assert.deepEqual([...params.keys()], ['rows', 'content', 'offsets', 'min_date', 'max_date']);
    assert.deepEqual(
      [params.get('min_date')?.parameterValue, params.get('max_date')?.parameterValue],
      [{ value: '2024-03-01' }, { value: '2024-03-02' }],
    );
    const rows = (params.get('rows')?.parameterValue.arrayValues as Array<{ structValues: Record<string, Row> }>).map(
      (r) => r.structValues,
    );
    assert.deepEqual(
      rows.map((r) => r.event_id),
      KNOWN_EVENTS.map((e) => ({ value: e.event_id })),
    );
    assert.deepEqual(rows[5]?.user_id, {}, 'a NULL is a value without `value`');
    assert.deepEqual(rows[3]?.quality_flags, { arrayValues: [{ value: 'missing_duration' }] });
    assert.deepEqual(params.get('offsets')?.parameterValue, {
      arrayValues: [
        { structValues: { topic: { value: TOPIC }, kafka_partition: { value: '3' }, next_offset: { value: '109' } } },
      ],
    });

    const stored = fake.rows(dataset, 'engagement_events_enriched');
    assert.deepEqual(ids(stored), KNOWN_EVENTS.map((e) => e.event_id).sort());
    const e107 = stored.find((r) => r.event_id === '107');
    assert.equal(e107?.content_title, 'Alpha v2');
    assert.equal(e107?.kafka_offset, '106');
    assert.equal(e107?.engagement_seconds, 120);
    assert.equal(typeof e107?.loaded_at, 'string');
    const dim = fake
      .rows(dataset, 'content_dim')
      .map((r) => [r.content_id, r.content_title])
      .sort();
    assert.deepEqual(dim.map(([, t]) => t).sort(), ['Alpha v2', 'Bravo', 'Charlie']);
    assert.deepEqual(await sink.storedOffsets(TOPIC, [3, 4]), new Map([[3, '109']]));
    await sink.close();
  });

  it('adds nothing for the same batch twice or for re-sent event ids', async () => {
    const { config, dataset } = fresh();
    const sink = await started(config);
    const batch = batchOf(TOPIC, 0, events(1, 20), 0);
    await sink.write(batch);
    await sink.write(batch);
    assert.equal(fake.rows(dataset, 'engagement_events_enriched').length, 20);
    await sink.write(
      batchOf(TOPIC, 0, [...events(11, 10).map((e) => ({ ...e, origin: 'backfill' as const })), ...events(500, 2)], 20),
    );
    const stored = fake.rows(dataset, 'engagement_events_enriched');
    assert.equal(stored.length, 22, 'only the two new ids were added');
    assert.equal(stored.filter((r) => r.origin === 'backfill').length, 0);
    assert.deepEqual(await sink.storedOffsets(TOPIC, [0]), new Map([[0, '32']]));
    await sink.close();
  });

  it('stores new events that reuse ids (another event_ts), and re-declares the key of a table made with event_id alone', async () => {
    const { config, dataset } = fresh();
    let sink = await started(config);
    const at = (ts: string) => [1, 2, 3].map((id) => whEvent(id, 'A', `u${id}`, 'play', ts, 1000));
    await sink.write(batchOf(TOPIC, 0, at('2024-03-01T10:00:00.000Z'), 0));
    const batch = batchOf(
      TOPIC,
      0,
      [...at('2024-03-01T11:00:00.000Z'), at('2024-03-01T10:00:00.000Z')[1] as ReturnType<typeof whEvent>],
      3,
    );
    await sink.write(batch);
    await sink.write(batch);
    assert.deepEqual(ids(fake.rows(dataset, 'engagement_events_enriched')), ['1', '1', '2', '2', '3', '3']);
    await sink.close();
    const table = createBigQueryClient(config).dataset(dataset).table(FACT_TABLE.name);
    await table.setMetadata({ tableConstraints: { primaryKey: { columns: ['event_id'] } } });
    sink = await started(config);
    await sink.close();
    const [meta] = await table.getMetadata();
    assert.deepEqual((meta as { tableConstraints?: unknown }).tableConstraints, {
      primaryKey: { columns: ['event_id', 'event_ts'] },
    });
  });

  it('a lost response (committed, then 503) surfaces as retriable; the retry duplicates nothing', async () => {
    const { config, dataset } = fresh();
    const sink = await started(config);
    const batch = batchOf(TOPIC, 1, events(1, 10), 0);
    fake.fail('jobs.insert', { status: 503, reason: 'backendError', afterApply: true });
    const err = await sink.write(batch).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof PipelineError && err.retriable && err.code === 'SINK_WRITE_FAILED', String(err));
    assert.equal(fake.rows(dataset, 'engagement_events_enriched').length, 10, 'the job did commit');
    await sink.write(batch);
    assert.equal(fake.rows(dataset, 'engagement_events_enriched').length, 10);
    assert.deepEqual(await sink.storedOffsets(TOPIC, [1]), new Map([[1, '10']]));
    await sink.close();
  });

  it('surfaces 5xx, 429 and aborted transactions as retriable, invalid queries as not', async () => {
    const { config, dataset } = fresh();
    const sink = await started(config);
    const batch = batchOf(TOPIC, 0, events(1, 3), 0);
    const cases: Array<[Parameters<FakeBigQuery['fail']>[1], boolean]> = [
      [{ status: 500, reason: 'internalError' }, true],
      [{ status: 503, reason: 'backendError' }, true],
      [{ status: 429, reason: 'rateLimitExceeded' }, true],
      [
        {
          status: 400,
          reason: 'invalidQuery',
          message: 'Transaction is aborted due to concurrent update against table x',
        },
        true,
      ],
      [{ status: 400, reason: 'invalidQuery', message: 'Syntax error' }, false],
    ];
    for (const [fault, retriable] of cases) {
      fake.fail('jobs.insert', fault);
      const err = await sink.write(batch).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof PipelineError, `${fault.reason}: a PipelineError`);
      assert.equal(err.retriable, retriable, `${fault.reason} ${fault.message ?? ''}`);
      assert.equal(err.code, retriable ? 'SINK_WRITE_FAILED' : 'SINK_REJECTED');
    }
    fake.fail('queries.get', { status: 502, reason: 'backendError' });
    await assert.rejects(sink.write(batch), (e: unknown) => e instanceof PipelineError && e.retriable);
    assert.equal(
      fake.rows(dataset, 'engagement_events_enriched').length,
      3,
      'only the job whose result was lost committed',
    );
    await sink.write(batch);
    assert.equal(fake.rows(dataset, 'engagement_events_enriched').length, 3);
    await sink.close();
  });

  it('splits a large batch into transactions that each store the offset after their own rows', async () => {
    const offsetsOf = (from: number) =>
      fake
        .requestsOf('jobs.insert')
        .slice(from)
        .map((r) => {
          const p = (
            r.body as { configuration: { query: { queryParameters: Array<{ name: string; parameterValue: Row }> } } }
          ).configuration.query.queryParameters.find((x) => x.name === 'offsets');
          return (
            (p?.parameterValue.arrayValues as Array<{ structValues: { next_offset: { value: string } } }>)[0]
              ?.structValues.next_offset.value ?? ''
          );
        });
    const batch: SinkBatch = batchOf(TOPIC, 2, events(1, 30), 70);
    const a = fresh();
    const sink = await started(a.config, 6000);
    const from = fake.requestsOf('jobs.insert').length;
    await sink.write(batch);
    const chunkOffsets = offsetsOf(from);
    assert.ok(chunkOffsets.length > 2, `the batch was split (${chunkOffsets.length} jobs)`);
    assert.equal(chunkOffsets[chunkOffsets.length - 1], '100', 'the last chunk stores the batch`s next offset');
    assert.deepEqual(
      [...chunkOffsets].sort((x, y) => Number(x) - Number(y)),
      chunkOffsets,
      'offsets increase chunk by chunk',
    );
    assert.equal(fake.rows(a.dataset, 'engagement_events_enriched').length, 30);
    await sink.close();

    // A crash after two chunks committed: the stored offset covers exactly them; the runtime
    // resumes from it, or (every commit lost) re-delivers the whole batch: nothing doubles.
    const b = fresh();
    const second = await started(b.config, 6000);
    fake.fail('jobs.insert', { status: 503, reason: 'backendError', after: 2 });
    await assert.rejects(second.write(batch), { code: 'SINK_WRITE_FAILED' });
    const stored = (await second.storedOffsets(TOPIC, [2])).get(2);
    assert.equal(stored, chunkOffsets[1]);
    const committed = fake.rows(b.dataset, 'engagement_events_enriched').length;
    assert.equal(committed, Number(stored) - 70, 'rows and offset were committed together');
    await second.write({ ...batch, records: batch.records.filter((r) => BigInt(r.offset) >= BigInt(stored ?? '0')) });
    await second.write(batch);
    assert.equal(fake.rows(b.dataset, 'engagement_events_enriched').length, 30);
    assert.deepEqual(await second.storedOffsets(TOPIC, [2]), new Map([[2, '100']]));
    await second.close();
  });

  it('reports a table dropped while running as SINK_STATE_LOST and re-creates it', async () => {
    const { config, dataset } = fresh();
    const sink = await started(config);
    await sink.write(batchOf(TOPIC, 0, events(1, 2), 0));
    fake.tables.delete(`${dataset}.warehouse_offsets`);
    await assert.rejects(sink.write(batchOf(TOPIC, 0, events(3, 2), 2)), { code: 'SINK_STATE_LOST' });
    assert.deepEqual(await sink.storedOffsets(TOPIC, [0]), new Map(), 're-created, empty');
    assert.ok(fake.tables.has(`${dataset}.warehouse_offsets`));
    await sink.write(batchOf(TOPIC, 0, events(1, 4), 0));
    assert.equal(fake.rows(dataset, 'engagement_events_enriched').length, 4);
    await sink.close();
  });
});

describe('bigquery warehouse: lost fact table', () => {
  it('forgets the stored offsets when the fact table was dropped, so the warehouse is rebuilt', async () => {
    const { config, dataset } = fresh();
    const sink = await started(config);
    await sink.write(batchOf(TOPIC, 0, events(1, 3), 0));
    fake.tables.delete(`${dataset}.engagement_events_enriched`);
    await assert.rejects(sink.write(batchOf(TOPIC, 0, events(4, 1), 3)), { code: 'SINK_STATE_LOST' });
    assert.deepEqual(await sink.storedOffsets(TOPIC, [0]), new Map(), 'offsets claiming the lost rows are gone');
    await sink.write(batchOf(TOPIC, 0, events(1, 4), 0));
    assert.equal(fake.rows(dataset, 'engagement_events_enriched').length, 4);
    await sink.close();
  });
});

describe('bigquery warehouse: configuration', () => {
  it('is chosen when BIGQUERY_PROJECT_ID is set, and flushes at BATCH_SIZE or WAREHOUSE_FLUSH_SECONDS', () => {
    assert.ok(warehouseSinkFactory.create(ctxOf(env.config)) instanceof BigQueryWarehouse);
    assert.deepEqual(
      warehouseSinkFactory.batching?.({ ...env.config, BATCH_SIZE: 5000, WAREHOUSE_FLUSH_SECONDS: 2.5 }),
      { maxRecords: 5000, maxWaitMs: 2500, paced: false },
    );
    assert.deepEqual(
      warehouseSinkFactory.batching?.({ ...env.config, BATCH_SIZE: undefined, WAREHOUSE_FLUSH_SECONDS: undefined }),
      { maxRecords: 100, maxWaitMs: 30_000, paced: false },
      'BigQuery by default: 100 rows or 30 s (a query job per batch)',
    );
    assert.deepEqual(
      warehouseSinkFactory.batching?.({
        ...env.config,
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
      () => createBigQueryClient({ ...env.config, GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/key.json' }),
      { code: 'CONFIG_INVALID' },
    );
  });
});
