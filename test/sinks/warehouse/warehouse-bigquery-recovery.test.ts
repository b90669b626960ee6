import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PipelineError } from '../../../src/core/errors.js';
import type { SinkBatch } from '../../../src/core/sink-contract.js';
import { FakeBigQuery, type Row } from '../../helpers/fake-bigquery.js';
import { bigQueryTestFile, events } from './bigquery-fixtures.js';
import { batchOf } from './warehouse-fixtures.js';

/**
 * The BigQuery warehouse when things go wrong, against the local fake of the BigQuery REST API
 * (test/helpers/fake-bigquery.ts): how failures surface (retriable or not), a large batch split
 * into transactions that each store their own offset, and a dropped table or fact table.
 */

const { fake: fakeOf, fresh, started } = bigQueryTestFile();
const TOPIC = 'enriched';

describe('bigquery warehouse: writes', () => {
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
      fakeOf().fail('jobs.insert', fault);
      const err = await sink.write(batch).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof PipelineError, `${fault.reason}: a PipelineError`);
      assert.equal(err.retriable, retriable, `${fault.reason} ${fault.message ?? ''}`);
      assert.equal(err.code, retriable ? 'SINK_WRITE_FAILED' : 'SINK_REJECTED');
    }
    fakeOf().fail('queries.get', { status: 502, reason: 'backendError' });
    await assert.rejects(sink.write(batch), (e: unknown) => e instanceof PipelineError && e.retriable);
    assert.equal(
      fakeOf().rows(dataset, 'engagement_events_enriched').length,
      3,
      'only the job whose result was lost committed',
    );
    await sink.write(batch);
    assert.equal(fakeOf().rows(dataset, 'engagement_events_enriched').length, 3);
    await sink.close();
  });

  it('splits a large batch into transactions that each store the offset after their own rows', async () => {
    const offsetsOf = (from: number) =>
      fakeOf()
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
    const from = fakeOf().requestsOf('jobs.insert').length;
    await sink.write(batch);
    const chunkOffsets = offsetsOf(from);
    assert.ok(chunkOffsets.length > 2, `the batch was split (${chunkOffsets.length} jobs)`);
    assert.equal(chunkOffsets[chunkOffsets.length - 1], '100', 'the last chunk stores the batch`s next offset');
    assert.deepEqual(
      [...chunkOffsets].sort((x, y) => Number(x) - Number(y)),
      chunkOffsets,
      'offsets increase chunk by chunk',
    );
    assert.equal(fakeOf().rows(a.dataset, 'engagement_events_enriched').length, 30);
    await sink.close();

    // A crash after two chunks committed: the stored offset covers exactly them; the runtime
    // resumes from it, or (every commit lost) re-delivers the whole batch: nothing doubles.
    const b = fresh();
    const second = await started(b.config, 6000);
    fakeOf().fail('jobs.insert', { status: 503, reason: 'backendError', after: 2 });
    await assert.rejects(second.write(batch), { code: 'SINK_WRITE_FAILED' });
    const stored = (await second.storedOffsets(TOPIC, [2])).get(2);
    assert.equal(stored, chunkOffsets[1]);
    const committed = fakeOf().rows(b.dataset, 'engagement_events_enriched').length;
    assert.equal(committed, Number(stored) - 70, 'rows and offset were committed together');
    await second.write({ ...batch, records: batch.records.filter((r) => BigInt(r.offset) >= BigInt(stored ?? '0')) });
    await second.write(batch);
    assert.equal(fakeOf().rows(b.dataset, 'engagement_events_enriched').length, 30);
    assert.deepEqual(await second.storedOffsets(TOPIC, [2]), new Map([[2, '100']]));
    await second.close();
  });

  it('reports a table dropped while running as SINK_STATE_LOST and re-creates it', async () => {
    const { config, dataset } = fresh();
    const sink = await started(config);
    await sink.write(batchOf(TOPIC, 0, events(1, 2), 0));
    fakeOf().tables.delete(`${dataset}.warehouse_offsets`);
    await assert.rejects(sink.write(batchOf(TOPIC, 0, events(3, 2), 2)), { code: 'SINK_STATE_LOST' });
    assert.deepEqual(await sink.storedOffsets(TOPIC, [0]), new Map(), 're-created, empty');
    assert.ok(fakeOf().tables.has(`${dataset}.warehouse_offsets`));
    await sink.write(batchOf(TOPIC, 0, events(1, 4), 0));
    assert.equal(fakeOf().rows(dataset, 'engagement_events_enriched').length, 4);
    await sink.close();
  });
});

describe('bigquery warehouse: lost fact table', () => {
  it('forgets the stored offsets when the fact table was dropped, so the warehouse is rebuilt', async () => {
    const { config, dataset } = fresh();
    const sink = await started(config);
    await sink.write(batchOf(TOPIC, 0, events(1, 3), 0));
    fakeOf().tables.delete(`${dataset}.engagement_events_enriched`);
    await assert.rejects(sink.write(batchOf(TOPIC, 0, events(4, 1), 3)), { code: 'SINK_STATE_LOST' });
    assert.deepEqual(await sink.storedOffsets(TOPIC, [0]), new Map(), 'offsets claiming the lost rows are gone');
    await sink.write(batchOf(TOPIC, 0, events(1, 4), 0));
    assert.equal(fakeOf().rows(dataset, 'engagement_events_enriched').length, 4);
    await sink.close();
  });
});
