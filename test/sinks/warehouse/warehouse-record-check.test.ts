import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SinkRecord } from '../../../src/core/sink-contract.js';
import { checkWarehouseRecord } from '../../../src/sinks/warehouse/record-check.js';
import { batchOf, whEvent } from './warehouse-fixtures.js';

/** The warehouse's record check, rule by rule (pure: no stack). */

const good = batchOf('t', 0, [whEvent(7, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1500)], 41)
  .records[0] as SinkRecord;
const withEvent = (patch: Record<string, unknown>): SinkRecord => ({
  ...good,
  event: { ...good.event, ...patch } as SinkRecord['event'],
});
const problems = (r: SinkRecord): string[] => {
  const err = checkWarehouseRecord(r);
  if (err === null) return [];
  assert.equal(err.code, 'INVALID_VALUE');
  return (err.details as { problems: string[] }).problems;
};

test('a complete enriched record passes, nullable columns may be null', () => {
  assert.deepEqual(problems(good), []);
  assert.deepEqual(
    problems(
      withEvent({
        user_id: null,
        duration_ms: null,
        device: null,
        content_type: null,
        length_seconds: null,
        publish_ts: null,
        engagement_seconds: null,
        engagement_pct: null,
      }),
    ),
    [],
  );
  assert.deepEqual(
    problems(withEvent({ event_id: '9223372036854775807', event_ts: '2024-03-01 10:00:00.123456+02:00' })),
    [],
    'int64 max; a space and an offset are ISO-8601 too',
  );
});

test('each rule names its own problem', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ event_id: 'abc' }, 'event_id is not a non-negative int64 in canonical decimal form'],
    [{ event_id: '007' }, 'event_id is not a non-negative int64 in canonical decimal form'],
    [{ event_id: '9223372036854775808' }, 'event_id is not a non-negative int64 in canonical decimal form'],
    [{ content_id: '' }, 'content_id is missing'],
    [{ user_id: 5 }, 'user_id is not a string'],
    [{ event_type: 'skip' }, 'event_type is not play, pause, finish or click'],
    [{ event_ts: 'yesterday' }, 'event_ts is not an ISO-8601 instant'],
    [{ event_ts: '2024-03-01T10:00:00' }, 'event_ts is not an ISO-8601 instant'],
    [{ duration_ms: 1.5 }, 'duration_ms is not an integer'],
    [{ device: false }, 'device is not a string'],
    [{ content_slug: null }, 'content_slug is missing'],
    [{ content_title: undefined }, 'content_title is missing'],
    [{ content_type: 'film' }, 'content_type is not podcast, newsletter or video'],
    [{ length_seconds: '600' }, 'length_seconds is not an integer'],
    [{ publish_ts: 'soon' }, 'publish_ts is not an ISO-8601 instant'],
    [{ engagement_seconds: Number.POSITIVE_INFINITY }, 'engagement_seconds is not a finite number'],
    [{ engagement_pct: Number.NaN }, 'engagement_pct is not a finite number'],
    [{ event_date: '2024-3-1' }, 'event_date is not YYYY-MM-DD'],
    [{ event_hour: '2024-03-01T10' }, 'event_hour is not an ISO-8601 instant'],
    [{ source_ts_ms: 1.5 }, 'source_ts_ms is not an integer'],
    [{ processed_ts_ms: null }, 'processed_ts_ms is not an integer'],
    [{ origin: 'replay' }, 'origin is not stream or backfill'],
    [{ quality_flags: ['ok', 3] }, 'quality_flags is not a list of strings'],
    [{ schema_version: '1' }, 'schema_version is not an integer'],
  ];
  for (const [patch, problem] of cases) assert.deepEqual(problems(withEvent(patch)), [problem], JSON.stringify(patch));
  assert.deepEqual(problems({ ...good, offset: '-1' }), ['the Kafka offset is not an int64']);
  assert.deepEqual(problems({ ...good, offset: '-2', partition: -1 }), ['the Kafka offset is not an int64']);
  assert.deepEqual(
    problems({ ...good, offset: '-1', partition: -1 }),
    [],
    'a record written without Kafka (a direct backfill)',
  );
});

test('every broken rule is listed, in rule order, and the message names the event', () => {
  const err = checkWarehouseRecord(withEvent({ event_type: 'skip', event_date: 'x', origin: null }));
  assert.equal(
    err?.message,
    'warehouse cannot store event 7: event_type is not play, pause, finish or click; event_date is not YYYY-MM-DD; origin is not stream or backfill',
  );
});

test('remembered verdicts of repeated texts stay the verdicts (a bad hour, date or publish time is refused every time)', () => {
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(problems(withEvent({ event_hour: '2024-03-01T10:00:00.000' })), [
      'event_hour is not an ISO-8601 instant',
    ]);
    assert.deepEqual(problems(withEvent({ event_date: '2024-13-45' })), ['event_date is not YYYY-MM-DD']);
    assert.deepEqual(problems(withEvent({ publish_ts: 'x' })), ['publish_ts is not an ISO-8601 instant']);
    assert.deepEqual(problems(good), []);
  }
  // Past the cache's bound (4,096 texts), verdicts are unchanged.
  for (let h = 0; h < 5000; h++) {
    const hour = new Date(Date.UTC(2024, 0, 1) + h * 3_600_000).toISOString();
    assert.deepEqual(problems(withEvent({ event_hour: hour, event_date: hour.slice(0, 10) })), [], hour);
  }
  assert.deepEqual(problems(withEvent({ event_hour: 'nope' })), ['event_hour is not an ISO-8601 instant']);
});
