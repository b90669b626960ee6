import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventKey, instantMicros } from '../../../src/core/event-identity.js';
import type { EncodedBatch } from '../../../src/core/sink-contract.js';
import { duckdbDialect } from '../../../src/sinks/warehouse/dialect.js';
import { DAILY_SUMMARY, dailySummarySql } from '../../../src/sinks/warehouse/views.js';
import {
  approxEqualRows,
  batchOf,
  duckdbFiles,
  EXPECTED_DAILY,
  EXPECTED_HOURLY,
  KNOWN_EVENTS,
  openReader,
  startedWarehouse,
  whEvent,
} from './warehouse-fixtures.js';

/**
 * The event's identity in the DuckDB warehouse, both ways of writing it (checked `write`, fast
 * `writeEncoded`), on real DuckDB files: after a sequence reset (TRUNCATE … RESTART IDENTITY, a
 * restore) new events reuse old ids with their own event_ts, and each is stored; the same event
 * re-sent — in the CDC's or the backfill's rendering of its event_ts — is stored once. Also: the
 * views leave out events flagged implausible_duration, which the fact table keeps.
 */

const files = duckdbFiles();
const TOPIC = 'enriched';
const OLD = '2024-03-01T10:00:00.5Z';
const NEW = '2024-03-01T10:07:12.25Z';
/** The same instants as the backfill renders them (to_char, six digits). */
const asBackfill = (ts: string) => ts.replace(/\.(\d+)Z$/, (_, f: string) => `.${f.padEnd(6, '0')}Z`);

function encoded(values: string[], firstOffset: number): EncodedBatch {
  return {
    topic: TOPIC,
    partition: 0,
    records: values.map((v, i) => ({ offset: String(firstOffset + i), value: Buffer.from(v) })),
    nextOffset: String(firstOffset + values.length),
  };
}

async function facts(file: string): Promise<string[]> {
  const r = await openReader(file);
  try {
    const rows = await r.rows(
      `SELECT CAST(event_id AS VARCHAR) || ' ' || strftime(event_ts, '%H:%M:%S.%f') AS k FROM engagement_events_enriched ORDER BY event_id, event_ts`,
    );
    return rows.map((x) => String(x.k));
  } finally {
    r.close();
  }
}

describe('event identity: (event_id, event_ts)', () => {
  it('keys an event by id and instant, whatever the text of the instant', () => {
    assert.equal(
      eventKey({ event_id: '7', event_ts: '2024-03-01T10:00:00.5Z' }),
      eventKey({ event_id: '7', event_ts: '2024-03-01T10:00:00.500000Z' }),
    );
    assert.equal(
      eventKey({ event_id: '7', event_ts: '2024-03-01T15:30:00.5+05:30' }),
      eventKey({ event_id: '7', event_ts: OLD }),
    );
    assert.notEqual(
      eventKey({ event_id: '7', event_ts: OLD }),
      eventKey({ event_id: '7', event_ts: '2024-03-01T10:00:00.500001Z' }),
    );
    assert.equal(eventKey({ event_id: '7', event_ts: OLD }), `7@${Date.parse(OLD) * 1000}`);
    assert.equal(instantMicros('2024-03-01T10:00Z'), BigInt(Date.parse('2024-03-01T10:00:00Z')) * 1000n);
    assert.equal(instantMicros('not a time'), null);
  });

  it('checked way: new events reusing old ids are stored, a re-sent event is not, the same batch twice adds nothing', async () => {
    const { sink, file } = await startedWarehouse(files.fresh());
    try {
      const old = [1, 2, 3].map((id) => whEvent(id, 'A', `u${id}`, 'play', OLD, 1000));
      await sink.write(batchOf(TOPIC, 0, old, 0));
      // After TRUNCATE … RESTART IDENTITY: ids 1..3 again, new events; with them old event 2 re-sent by a backfill.
      const reused = [1, 2, 3].map((id) => whEvent(id, 'B', `v${id}`, 'pause', NEW, 2000));
      const batch = batchOf(
        TOPIC,
        0,
        [...reused, { ...(old[1] as (typeof old)[number]), event_ts: asBackfill(OLD), origin: 'backfill' as const }],
        3,
      );
      await sink.write(batch);
      await sink.write(batch);
      assert.deepEqual(await facts(file), [
        '1 10:00:00.500000',
        '1 10:07:12.250000',
        '2 10:00:00.500000',
        '2 10:07:12.250000',
        '3 10:00:00.500000',
        '3 10:07:12.250000',
      ]);
      assert.deepEqual((await sink.health()).detail?.inserted, 6);
      assert.deepEqual(await sink.storedOffsets(TOPIC, [0]), new Map([[0, '7']]));
    } finally {
      await sink.close();
    }
  });

  it('fast way: the same, and a batch carrying one id at two instants is written at once', async () => {
    const { sink, file } = await startedWarehouse(files.fresh());
    try {
      const old = [1, 2, 3].map((id) => JSON.stringify(whEvent(id, 'A', `u${id}`, 'play', OLD, 1000)));
      assert.equal((await sink.writeEncoded(encoded(old, 0))).kind, 'written');
      const reused = [1, 2, 3].map((id) => JSON.stringify(whEvent(id, 'B', `v${id}`, 'pause', NEW, 2000)));
      const resent = JSON.stringify(whEvent(2, 'A', 'u2', 'play', asBackfill(OLD), 1000, { origin: 'backfill' }));
      const batch = encoded([...reused, resent], 3);
      assert.equal((await sink.writeEncoded(batch)).kind, 'written');
      assert.equal((await sink.writeEncoded(batch)).kind, 'written');
      // One id, two events in one batch (old and new): not a repeat, so not declined.
      const pair = [
        JSON.stringify(whEvent(9, 'A', 'u9', 'play', OLD, 1)),
        JSON.stringify(whEvent(9, 'B', 'u9', 'play', NEW, 1)),
      ];
      assert.equal((await sink.writeEncoded(encoded(pair, 7))).kind, 'written');
      assert.deepEqual(await facts(file), [
        '1 10:00:00.500000',
        '1 10:07:12.250000',
        '2 10:00:00.500000',
        '2 10:07:12.250000',
        '3 10:00:00.500000',
        '3 10:07:12.250000',
        '9 10:00:00.500000',
        '9 10:07:12.250000',
      ]);
      // The same event twice in one batch, in the CDC's and the backfill's rendering: a repeat.
      const twice = [
        JSON.stringify(whEvent(11, 'A', 'u1', 'play', OLD, 1)),
        JSON.stringify(whEvent(11, 'A', 'u1', 'play', asBackfill(OLD), 1)),
      ];
      assert.deepEqual(await sink.writeEncoded(encoded(twice, 9)), { kind: 'needs-check' });
    } finally {
      await sink.close();
    }
  });

  it('the views leave out events flagged implausible_duration; the fact table keeps them, flagged', async () => {
    const { sink, file } = await startedWarehouse(files.fresh());
    try {
      const implausible = whEvent(900, 'A', 'u9', 'play', '2024-03-01T10:50:00.000Z', 2147483647, {
        quality_flags: ['pct_above_100', 'implausible_duration'],
      });
      await sink.write(batchOf(TOPIC, 0, [...KNOWN_EVENTS, implausible], 0));
      const r = await openReader(file);
      try {
        const daily = await r.rows(
          `SELECT CAST(event_date AS VARCHAR) AS event_date, * EXCLUDE (event_date, content_id) FROM daily_engagement_summary ORDER BY event_date, content_slug`,
        );
        assert.equal(approxEqualRows(daily, EXPECTED_DAILY), null);
        const hourly = await r.rows(
          `SELECT hour_bucket, CAST(event_date AS VARCHAR) AS event_date, * EXCLUDE (hour_bucket, event_date) FROM hourly_engagement_trends ORDER BY hour_bucket, content_type`,
        );
        assert.equal(approxEqualRows(hourly, EXPECTED_HOURLY), null);
        const [row] = await r.rows(
          `SELECT duration_ms, quality_flags FROM engagement_events_enriched WHERE event_id = 900`,
        );
        assert.deepEqual(row, { duration_ms: 2147483647, quality_flags: ['pct_above_100', 'implausible_duration'] });
      } finally {
        r.close();
      }
    } finally {
      await sink.close();
    }
  });

  it('an existing file keeps working: its rows keep deduping, a reused id is stored, its old views are replaced', async () => {
    const config = files.fresh();
    let { sink } = await startedWarehouse(config);
    await sink.write(
      batchOf(
        TOPIC,
        0,
        [1, 2].map((id) => whEvent(id, 'A', `u${id}`, 'play', OLD, 1000)),
        0,
      ),
    );
    await sink.close();
    // The view as it was before implausible events were left out.
    const oldView = dailySummarySql(duckdbDialect)
      .split('\n')
      .filter((l) => !l.startsWith('WHERE '))
      .join('\n');
    let r = await openReader(config.DUCKDB_PATH);
    try {
      await r.rows(`CREATE OR REPLACE VIEW ${DAILY_SUMMARY} AS ${oldView}`);
    } finally {
      r.close();
    }
    ({ sink } = await startedWarehouse(config));
    try {
      const flagged = whEvent(2, 'A', 'u9', 'play', NEW, 2147483647, { quality_flags: ['implausible_duration'] });
      await sink.write(batchOf(TOPIC, 0, [whEvent(1, 'A', 'u1', 'play', asBackfill(OLD), 1000), flagged], 2));
      assert.deepEqual(await facts(config.DUCKDB_PATH), [
        '1 10:00:00.500000',
        '2 10:00:00.500000',
        '2 10:07:12.250000',
      ]);
      r = await openReader(config.DUCKDB_PATH);
      try {
        assert.deepEqual(
          await r.rows(`SELECT total_events FROM ${DAILY_SUMMARY}`),
          [{ total_events: 2 }],
          'the replaced view leaves the flagged event out',
        );
      } finally {
        r.close();
      }
    } finally {
      await sink.close();
    }
  });
});
