import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PipelineError } from '../../../src/core/errors.js';
import { createBigQueryClient } from '../../../src/sinks/warehouse/bigquery-client.js';
import { FACT_TABLE } from '../../../src/sinks/warehouse/schema.js';
import { type Row } from '../../helpers/fake-bigquery.js';
import { bigQueryTestFile, events, ids } from './bigquery-fixtures.js';
import { batchOf, KNOWN_EVENTS, whEvent } from './warehouse-fixtures.js';

/**
 * The BigQuery warehouse's writes against the local fake of the BigQuery REST API
 * (test/helpers/fake-bigquery.ts): what one batch sends (one transaction job: MERGE rows / content
 * / offsets), exactly-once for the same batch twice, re-sent and reused event ids, and a lost
 * response retried.
 */

const { fake: fakeOf, fresh, started } = bigQueryTestFile();
const TOPIC = 'enriched';

describe('bigquery warehouse: writes', () => {
  it('sends one transaction job per batch, with the rows as typed parameters', async () => {
    const { config, dataset } = fresh();
    const sink = await started(config);
    const jobsBefore = fakeOf().requestsOf('jobs.insert').length;
    await sink.write(batchOf(TOPIC, 3, KNOWN_EVENTS, 100));
    const jobs = fakeOf().requestsOf('jobs.insert').slice(jobsBefore);
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

    const stored = fakeOf().rows(dataset, 'engagement_events_enriched');
    assert.deepEqual(ids(stored), KNOWN_EVENTS.map((e) => e.event_id).sort());
    const e107 = stored.find((r) => r.event_id === '107');
    assert.equal(e107?.content_title, 'Alpha v2');
    assert.equal(e107?.kafka_offset, '106');
    assert.equal(e107?.engagement_seconds, 120);
    assert.equal(typeof e107?.loaded_at, 'string');
    const dim = fakeOf()
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
    assert.equal(fakeOf().rows(dataset, 'engagement_events_enriched').length, 20);
    await sink.write(
      batchOf(TOPIC, 0, [...events(11, 10).map((e) => ({ ...e, origin: 'backfill' as const })), ...events(500, 2)], 20),
    );
    const stored = fakeOf().rows(dataset, 'engagement_events_enriched');
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
    assert.deepEqual(ids(fakeOf().rows(dataset, 'engagement_events_enriched')), ['1', '1', '2', '2', '3', '3']);
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
    fakeOf().fail('jobs.insert', { status: 503, reason: 'backendError', afterApply: true });
    const err = await sink.write(batch).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof PipelineError && err.retriable && err.code === 'SINK_WRITE_FAILED', String(err));
    assert.equal(fakeOf().rows(dataset, 'engagement_events_enriched').length, 10, 'the job did commit');
    await sink.write(batch);
    assert.equal(fakeOf().rows(dataset, 'engagement_events_enriched').length, 10);
    assert.deepEqual(await sink.storedOffsets(TOPIC, [1]), new Map([[1, '10']]));
    await sink.close();
  });
});
