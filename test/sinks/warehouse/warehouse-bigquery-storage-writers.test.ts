import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { grpc } from 'google-gax';
import { DIRECT_OFFSET, DIRECT_PARTITION } from '../../../src/core/sink-contract.js';
import { duckdbDialect } from '../../../src/sinks/warehouse/dialect.js';
import { DuckDbWarehouse } from '../../../src/sinks/warehouse/duckdb/duckdb-warehouse.js';
import { viewDefinitions } from '../../../src/sinks/warehouse/views.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';
import { enrichedEvent } from '../../helpers/sink-harness.js';
import {
  factRows,
  loggedOffset,
  startedStorageSink,
  startStorageFakes,
  storageConfig,
  storedIds,
  type StorageFakes,
} from './bigquery-storage-fixtures.js';
import {
  approxEqualRows,
  batchOf,
  ctxOf,
  EXPECTED_DAILY,
  EXPECTED_HOURLY,
  KNOWN_EVENTS,
  openReader,
} from './warehouse-fixtures.js';

/**
 * The Storage Write API backend with more than one writer, a lost answer, and duplicates:
 * - offsets never move backwards (a stale writer's lower decision loses to the higher one);
 * - two decisions for the same records: the committed one holds, the other is not rolled forward;
 * - the decision's answer lost (applied or not): the retry settles it without writing twice;
 * - events appended twice (a replay) count once in the views, whose SQL runs on DuckDB over the
 *   rows the fake committed.
 */

const TOPIC = 'writers-topic';
let fakes: StorageFakes;
let env: TestEnv;
let n = 0;

before(async () => {
  fakes = await startStorageFakes();
  env = await createTestEnv();
});

after(async () => {
  await env.cleanup();
  await fakes.close();
});

function fresh() {
  const dataset = `writers_${++n}`;
  return { dataset, config: storageConfig(env.config, fakes, dataset) };
}

const events = (count: number, from = 1) =>
  Array.from({ length: count }, (_, i) => enrichedEvent({ event_id: String(from + i) }));

describe('bigquery storage warehouse: writers', () => {
  it('never moves an offset backwards: the highest decision wins over a stale writer', async () => {
    const { dataset, config } = fresh();
    const [stale, owner] = [await startedStorageSink(config), await startedStorageSink(config)];
    await stale.storedOffsets(TOPIC, [0]);
    await owner.storedOffsets(TOPIC, [0]);
    const all = events(20);
    await owner.write(batchOf(TOPIC, 0, all, 0));
    await stale.write(batchOf(TOPIC, 0, all.slice(0, 10), 0)); // it still thinks it owns partition 0
    const next = await startedStorageSink(config);
    assert.deepEqual([...(await next.storedOffsets(TOPIC, [0]))], [[0, '20']]);
    assert.equal(storedIds(fakes, dataset).length, 30, "the stale writer's rows are appended (the views dedupe them)");
    for (const s of [stale, owner, next]) await s.close();
  });

  it('with two decisions for the same records, keeps the committed one and rolls nothing forward', async () => {
    const { dataset, config } = fresh();
    const [stale, owner] = [await startedStorageSink(config), await startedStorageSink(config)];
    await stale.storedOffsets(TOPIC, [0]);
    await owner.storedOffsets(TOPIC, [0]);
    const batch = batchOf(TOPIC, 0, events(10), 0);
    fakes.storage.fail('BatchCommitWriteStreams', { code: grpc.status.UNAVAILABLE });
    await assert.rejects(stale.write(batch), { code: 'SINK_WRITE_FAILED', retriable: true });
    await owner.write(batch); // decided too, and committed
    const next = await startedStorageSink(config);
    assert.deepEqual([...(await next.storedOffsets(TOPIC, [0]))], [[0, '10']]);
    const health = (await next.health()).detail as { rolledForward: number };
    assert.equal(health.rolledForward, 0);
    assert.deepEqual(
      storedIds(fakes, dataset),
      Array.from({ length: 10 }, (_, i) => i + 1),
      'each event once',
    );
    for (const s of [stale, owner, next]) await s.close();
  });

  for (const applied of [true, false]) {
    it(`settles a decision whose answer was lost (${applied ? 'written' : 'not written'}) without writing twice`, async () => {
      const { dataset, config } = fresh();
      const sink = await startedStorageSink(config);
      await sink.storedOffsets(TOPIC, [0]);
      const batch = batchOf(TOPIC, 0, events(20), 0);
      // The second AppendRows of the flush is the decision's.
      fakes.storage.fail('AppendRows', { code: grpc.status.UNAVAILABLE, after: 1, afterApply: applied });
      await assert.rejects(sink.write(batch), { retriable: true });
      assert.equal(loggedOffset(fakes, dataset, 0), applied ? 20n : null);
      await sink.write(batch); // the runtime's retry
      assert.deepEqual(
        storedIds(fakes, dataset),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.equal(loggedOffset(fakes, dataset, 0), 20n);
      await sink.write(batch); // and once more: already stored
      assert.equal(storedIds(fakes, dataset).length, 20);
      await sink.close();
    });
  }
});

describe('bigquery storage warehouse: rows without a Kafka position', () => {
  it("commits a backfill's direct page at once, with no decision; a re-sent page is absorbed by the views", async () => {
    const { dataset, config } = fresh();
    const sink = await startedStorageSink(config);
    const page = batchOf(TOPIC, DIRECT_PARTITION, events(5, 900), 0);
    const direct = {
      ...page,
      records: page.records.map((r) => ({ ...r, offset: DIRECT_OFFSET })),
      nextOffset: DIRECT_OFFSET,
    };
    await sink.write(direct);
    await sink.write(direct); // the page re-sent after a crash
    await sink.close();
    assert.equal(storedIds(fakes, dataset).length, 10, 'appended twice');
    assert.deepEqual(fakes.rest.rows(dataset, 'warehouse_commit_log'), [], 'no decision for rows without an offset');
    const identities = new Set(factRows(fakes, dataset).map((r) => `${String(r.event_id)}|${String(r.event_ts)}`));
    assert.equal(identities.size, 5, 'five events, which the views count once each');
  });
});

describe('bigquery storage warehouse: views over duplicates', () => {
  it('counts an event appended twice once (the views run on DuckDB over the committed rows)', async () => {
    const { dataset, config } = fresh();
    const sink = await startedStorageSink(config);
    await sink.storedOffsets(TOPIC, [0]);
    await sink.write(batchOf(TOPIC, 0, KNOWN_EVENTS.slice(0, 5), 0));
    await sink.write(batchOf(TOPIC, 0, KNOWN_EVENTS.slice(3), 5)); // 104 and 105 again, as a replay sends them
    await sink.close();
    assert.equal(factRows(fakes, dataset).length, KNOWN_EVENTS.length + 2, 'the fact table holds the two copies');

    const duckPath = path.join(path.dirname(env.config.DUCKDB_PATH), `views-${env.id}.duckdb`);
    const duck = new DuckDbWarehouse(ctxOf({ ...env.config, DUCKDB_PATH: duckPath }));
    await duck.start(); // the same tables in DuckDB
    await duck.close();
    const r = await openReader(duckPath);
    try {
      for (const table of ['engagement_events_enriched', 'content_dim']) {
        const file = path.join(path.dirname(duckPath), `${dataset}-${table}.json`);
        writeFileSync(file, JSON.stringify(fakes.rest.rows(dataset, table)));
        await r.rows(`INSERT INTO ${table} BY NAME SELECT * FROM read_json_auto('${file}')`);
      }
      for (const v of viewDefinitions(duckdbDialect, { dedupe: true }))
        await r.rows(`CREATE OR REPLACE VIEW ${v.name} AS ${v.sql}`);
      const daily = await r.rows(
        `SELECT CAST(event_date AS VARCHAR) AS event_date, * EXCLUDE (event_date, content_id) FROM daily_engagement_summary ORDER BY event_date, content_slug`,
      );
      assert.equal(approxEqualRows(daily, EXPECTED_DAILY), null);
      const hourly = await r.rows(
        `SELECT hour_bucket, CAST(event_date AS VARCHAR) AS event_date, * EXCLUDE (hour_bucket, event_date) FROM hourly_engagement_trends ORDER BY hour_bucket, content_type`,
      );
      assert.equal(approxEqualRows(hourly, EXPECTED_HOURLY), null);
    } finally {
      r.close();
    }
  });
});
