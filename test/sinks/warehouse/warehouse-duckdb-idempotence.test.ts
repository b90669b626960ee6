import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DuckDbWarehouse } from '../../../src/sinks/warehouse/duckdb/duckdb-warehouse.js';
import {
  approxEqualRows,
  batchOf,
  ctxOf,
  duckdbFiles,
  EXPECTED_DAILY,
  EXPECTED_HOURLY,
  KNOWN_EVENTS,
  openReader,
  whEvent,
  factCount,
} from './warehouse-fixtures.js';

/**
 * The DuckDB warehouse's exactly-once writes and upserts against real DuckDB files (one per
 * test, under the env's isolated folder): the same batch twice, a re-sent event id, offsets per
 * topic and partition, content_dim upserts, and the views' figures for a known data set.
 */

/** A config whose DUCKDB_PATH is a fresh file in a not-yet-existing folder of the env's directory. */
const freshConfig = duckdbFiles().fresh;
const TOPIC = 'enriched';

describe('duckdb warehouse', () => {
  it('adds nothing for the same batch twice, for a re-sent event id, or for an id twice in a batch', async () => {
    const config = freshConfig();
    const sink = new DuckDbWarehouse(ctxOf(config));
    await sink.start();
    const events = Array.from({ length: 50 }, (_, i) =>
      whEvent(1000 + i, i % 2 ? 'A' : 'B', `u${i % 7}`, 'play', '2024-03-01T10:15:00.000Z', 1000 * i),
    );
    const batch = batchOf(TOPIC, 0, events, 0);
    await sink.write(batch);
    await sink.write(batch);
    assert.equal(await factCount(config.DUCKDB_PATH), 50, 'the same batch twice stores it once');
    // A backfill re-sends events 1010..1019 at new offsets, mixed with two new events, one of them twice.
    const resent = events.slice(10, 20).map((e) => ({ ...e, origin: 'backfill' as const }));
    const fresh = whEvent(5000, 'A', 'u1', 'finish', '2024-03-02T10:00:00.000Z', 5000);
    await sink.write(
      batchOf(TOPIC, 0, [...resent, fresh, whEvent(5001, 'B', 'u2', 'play', '2024-03-02T10:00:00.000Z', 1), fresh], 50),
    );
    assert.equal(await factCount(config.DUCKDB_PATH), 52, 'only the two new ids were added');
    assert.equal(
      await factCount(config.DUCKDB_PATH, `origin = 'backfill'`),
      0,
      'the first copy of a re-sent event stays',
    );
    assert.deepEqual(await sink.storedOffsets(TOPIC, [0]), new Map([[0, '63']]), 'the offset still advanced');
    const r = await openReader(config.DUCKDB_PATH);
    try {
      assert.deepEqual(
        await r.rows(`SELECT count(*) = count(DISTINCT event_id) AS unique_ids FROM engagement_events_enriched`),
        [{ unique_ids: true }],
      );
    } finally {
      r.close();
    }
    await sink.close();
  });

  it('stores an empty batch`s offset, and offsets per topic and partition', async () => {
    const sink = new DuckDbWarehouse(ctxOf(freshConfig()));
    await sink.start();
    await sink.write({ topic: TOPIC, partition: 1, records: [], nextOffset: '17' });
    await sink.write({ topic: 'other', partition: 1, records: [], nextOffset: '3' });
    await sink.write({ topic: TOPIC, partition: 4, records: [], nextOffset: '9223372036854775000' });
    assert.deepEqual(
      await sink.storedOffsets(TOPIC, [1, 4, 5]),
      new Map([
        [1, '17'],
        [4, '9223372036854775000'],
      ]),
    );
    assert.deepEqual(await sink.storedOffsets('other', [1]), new Map([[1, '3']]));
    await sink.close();
  });

  it('upserts content_dim: newer enrichment wins, an older one never overwrites', async () => {
    const config = freshConfig();
    const sink = new DuckDbWarehouse(ctxOf(config));
    await sink.start();
    const at = (id: number, title: string, processed: number) =>
      whEvent(id, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1000, {
        content_title: title,
        processed_ts_ms: processed,
      });
    await sink.write(batchOf(TOPIC, 0, [at(1, 'First', 100), at(2, 'Second', 200)], 0));
    await sink.write(batchOf(TOPIC, 1, [at(3, 'Stale', 150)], 0));
    const r = await openReader(config.DUCKDB_PATH);
    try {
      assert.deepEqual(await r.rows(`SELECT content_id, content_title, version_ms FROM content_dim`), [
        {
          content_id: whEvent(0, 'A', null, 'play', '2024-03-01T00:00:00.000Z', null).content_id,
          content_title: 'Second',
          version_ms: 200,
        },
      ]);
    } finally {
      r.close();
    }
    await sink.close();
  });

  it('upserts content_dim only when the content changed (ContentMemo), and again after a re-open', async () => {
    const config = freshConfig();
    const at = (id: number, title: string, processed: number) =>
      whEvent(id, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1000, {
        content_title: title,
        processed_ts_ms: processed,
      });
    const dim = async () => {
      const r = await openReader(config.DUCKDB_PATH);
      try {
        return await r.rows(`SELECT content_title, version_ms FROM content_dim`);
      } finally {
        r.close();
      }
    };
    let sink = new DuckDbWarehouse(ctxOf(config));
    await sink.start();
    await sink.write(batchOf(TOPIC, 0, [at(1, 'Same', 100)], 0));
    await sink.write(batchOf(TOPIC, 0, [at(2, 'Same', 200)], 1));
    assert.deepEqual(
      await dim(),
      [{ content_title: 'Same', version_ms: 100 }],
      'unchanged content: the row keeps the version that first carried it',
    );
    await sink.write(batchOf(TOPIC, 0, [at(3, 'Changed', 300)], 2));
    assert.deepEqual(await dim(), [{ content_title: 'Changed', version_ms: 300 }], 'a change is written');
    await sink.close();
    sink = new DuckDbWarehouse(ctxOf(config));
    await sink.start();
    await sink.write(batchOf(TOPIC, 0, [at(4, 'Changed', 400)], 3));
    assert.deepEqual(
      await dim(),
      [{ content_title: 'Changed', version_ms: 400 }],
      'a new process upserts what it has not written itself',
    );
    await sink.close();
  });

  it('computes the views for a known data set (hand-computed figures)', async () => {
    const config = freshConfig();
    const sink = new DuckDbWarehouse(ctxOf(config));
    await sink.start();
    await sink.write(batchOf(TOPIC, 0, KNOWN_EVENTS.slice(0, 5), 0));
    await sink.write(batchOf(TOPIC, 0, KNOWN_EVENTS.slice(3), 5)); // 104 and 105 again: no effect
    const r = await openReader(config.DUCKDB_PATH);
    try {
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
    await sink.close();
  });
});
