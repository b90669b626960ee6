import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContentRow, QualityFlag } from '../../src/core/types.js';
import { enrichEvent, type EnrichMeta } from '../../src/processor/enrich.js';
import { reasonOf } from '../../src/processor/reasons.js';
import { enrichedJson } from '../../src/processor/enriched-json.js';
import { validateEventRow } from '../../src/processor/validate.js';
import { CONTENT, NOW, row } from './transform-fixtures.js';

const META: EnrichMeta = { sourceTsMs: NOW - 250, processedTsMs: NOW, origin: 'stream' };

interface OkCase {
  name: string;
  row?: Record<string, unknown>;
  content?: Partial<ContentRow>;
  expect: {
    engagement_seconds?: number | null;
    engagement_pct?: number | null;
    flags?: QualityFlag[];
    event_ts?: string;
    event_date?: string;
    event_hour?: string;
    event_id?: string;
    raw_payload?: unknown;
    extra?: Record<string, unknown>;
  };
}

const OK_CASES: OkCase[] = [
  {
    name: 'plain event',
    expect: {
      engagement_seconds: 30,
      engagement_pct: 50,
      flags: [],
      event_date: '2025-06-15',
      event_hour: '2025-06-15T10:00:00.000Z',
    },
  },
  { name: 'microseconds kept in event_ts', expect: { event_ts: '2025-06-15T10:20:30.123456Z' } },
  {
    name: 'event_ts without fraction',
    row: { event_ts: '2025-06-15T10:20:30Z' },
    expect: { event_ts: '2025-06-15T10:20:30Z', event_hour: '2025-06-15T10:00:00.000Z' },
  },
  {
    name: 'offset zone converted to UTC (date moves back a day)',
    row: { event_ts: '2025-06-15T01:30:00.5+02:00' },
    expect: { event_ts: '2025-06-14T23:30:00.5Z', event_date: '2025-06-14', event_hour: '2025-06-14T23:00:00.000Z' },
  },
  {
    name: 'space separator accepted',
    row: { event_ts: '2025-06-15 10:20:30.1Z' },
    expect: { event_ts: '2025-06-15T10:20:30.1Z' },
  },
  {
    name: 'duration null: seconds and pct null, flagged',
    row: { duration_ms: null },
    expect: { engagement_seconds: null, engagement_pct: null, flags: ['missing_duration'] },
  },
  {
    name: 'duration 0: pct 0',
    row: { duration_ms: 0 },
    expect: { engagement_seconds: 0, engagement_pct: 0, flags: [] },
  },
  {
    name: 'length null: pct null, flagged',
    content: { length_seconds: null },
    expect: { engagement_seconds: 30, engagement_pct: null, flags: ['missing_length'] },
  },
  {
    name: 'length 0: pct null, flagged',
    content: { length_seconds: 0 },
    expect: { engagement_pct: null, flags: ['non_positive_length'] },
  },
  {
    name: 'negative length: pct null, flagged',
    content: { length_seconds: -5 },
    expect: { engagement_pct: null, flags: ['non_positive_length'] },
  },
  {
    name: 'pct above 100 kept and flagged',
    row: { duration_ms: 90000 },
    expect: { engagement_seconds: 90, engagement_pct: 150, flags: ['pct_above_100'] },
  },
  { name: 'pct exactly 100 not flagged', row: { duration_ms: 60000 }, expect: { engagement_pct: 100, flags: [] } },
  {
    name: 'fractional seconds',
    row: { duration_ms: 1234 },
    content: { length_seconds: 10 },
    expect: { engagement_seconds: 1.234, engagement_pct: 12.34 },
  },
  {
    name: 'user and device null flagged',
    row: { user_id: null, device: null },
    expect: { flags: ['missing_user', 'missing_device'] },
  },
  { name: 'raw_payload JSON text parsed', expect: { raw_payload: { app: 'web', v: 2 } } },
  {
    name: 'raw_payload not JSON kept as text and flagged',
    row: { raw_payload: '{oops' },
    expect: { raw_payload: '{oops', flags: ['invalid_raw_payload'] },
  },
  { name: 'raw_payload null', row: { raw_payload: null }, expect: { raw_payload: null, flags: [] } },
  { name: 'raw_payload already an object', row: { raw_payload: { a: 1 } }, expect: { raw_payload: { a: 1 } } },
  {
    name: 'extra column (schema drift) passed through',
    row: { campaign: 'spring', score: 3 },
    expect: { extra: { campaign: 'spring', score: 3 } },
  },
  { name: 'numeric id normalised to a string', row: { id: 7 }, expect: { event_id: '7' } },
  { name: 'id beyond 2^53 kept exactly', row: { id: '9007199254740993' }, expect: { event_id: '9007199254740993' } },
  {
    name: 'event_ts exactly 2000-01-01 accepted',
    row: { event_ts: '2000-01-01T00:00:00Z' },
    expect: { event_date: '2000-01-01' },
  },
  {
    name: 'event_ts 23 h ahead accepted',
    row: { event_ts: new Date(NOW + 23 * 3600000).toISOString() },
    expect: { event_date: '2025-06-16' },
  },
];

interface RejectCase {
  name: string;
  row: Record<string, unknown>;
  content?: ContentRow | undefined;
  reason: string;
  code: string;
}

const REJECT_CASES: RejectCase[] = [
  { name: 'id missing', row: { id: undefined }, reason: 'MISSING_FIELD', code: 'MISSING_FIELD' },
  { name: 'id not a number', row: { id: 'abc' }, reason: 'INVALID_VALUE', code: 'INVALID_VALUE' },
  { name: 'NULL content_id', row: { content_id: null }, reason: 'NULL_CONTENT_ID', code: 'MISSING_FIELD' },
  { name: 'content_id not a string', row: { content_id: 12 }, reason: 'INVALID_VALUE', code: 'INVALID_VALUE' },
  { name: 'unknown event_type', row: { event_type: 'skip' }, reason: 'UNKNOWN_EVENT_TYPE', code: 'INVALID_VALUE' },
  { name: 'event_type null', row: { event_type: null }, reason: 'MISSING_FIELD', code: 'MISSING_FIELD' },
  { name: 'negative duration', row: { duration_ms: -1 }, reason: 'NEGATIVE_DURATION', code: 'INVALID_VALUE' },
  { name: 'duration not a number', row: { duration_ms: '5' }, reason: 'INVALID_VALUE', code: 'INVALID_VALUE' },
  {
    name: 'event_ts more than a day ahead',
    row: { event_ts: new Date(NOW + 25 * 3600000).toISOString() },
    reason: 'EVENT_TS_IN_FUTURE',
    code: 'INVALID_VALUE',
  },
  {
    name: 'event_ts before 2000',
    row: { event_ts: '1999-12-31T23:59:59.999Z' },
    reason: 'EVENT_TS_BEFORE_2000',
    code: 'INVALID_VALUE',
  },
  { name: 'event_ts missing', row: { event_ts: null }, reason: 'MISSING_FIELD', code: 'MISSING_FIELD' },
  { name: 'event_ts garbage', row: { event_ts: 'yesterday' }, reason: 'INVALID_VALUE', code: 'INVALID_VALUE' },
  {
    name: 'event_ts without zone',
    row: { event_ts: '2025-06-15T10:20:30' },
    reason: 'INVALID_VALUE',
    code: 'INVALID_VALUE',
  },
  {
    name: 'event_ts impossible date',
    row: { event_ts: '2025-02-30T10:00:00Z' },
    reason: 'INVALID_VALUE',
    code: 'INVALID_VALUE',
  },
  { name: 'user_id not a string', row: { user_id: 5 }, reason: 'INVALID_VALUE', code: 'INVALID_VALUE' },
  { name: 'content unknown', row: {}, content: undefined, reason: 'UNKNOWN_CONTENT', code: 'UNKNOWN_CONTENT' },
];

describe('enrichEvent: valid rows', () => {
  for (const c of OK_CASES) {
    it(c.name, () => {
      const res = enrichEvent(row(c.row), { ...CONTENT, ...c.content }, META);
      assert.equal(res.ok, true, res.ok ? '' : res.error.message);
      if (!res.ok) return;
      const e = res.event;
      const x = c.expect;
      if ('engagement_seconds' in x) assert.equal(e.engagement_seconds, x.engagement_seconds);
      if ('engagement_pct' in x) {
        if (x.engagement_pct === null || x.engagement_pct === undefined)
          assert.equal(e.engagement_pct, x.engagement_pct);
        else
          assert.ok(
            Math.abs((e.engagement_pct ?? NaN) - x.engagement_pct) < 1e-9,
            `pct ${e.engagement_pct} ≠ ${x.engagement_pct}`,
          );
      }
      if (x.flags) assert.deepEqual(e.quality_flags, x.flags);
      if (x.event_ts) assert.equal(e.event_ts, x.event_ts);
      if (x.event_date) assert.equal(e.event_date, x.event_date);
      if (x.event_hour) assert.equal(e.event_hour, x.event_hour);
      if (x.event_id) assert.equal(e.event_id, x.event_id);
      if ('raw_payload' in x) assert.deepEqual(e.raw_payload, x.raw_payload);
      if (x.extra) assert.deepEqual(e.extra, x.extra);
      // The stream processor's direct rendering is byte for byte the same record.
      const valid = validateEventRow(row(c.row), META.processedTsMs);
      assert.ok(valid.ok);
      assert.equal(enrichedJson(valid.value, { ...CONTENT, ...c.content }, META), JSON.stringify(e));
    });
  }

  it('carries every source column, the content columns and the meta', () => {
    const res = enrichEvent(row(), CONTENT, META);
    assert.ok(res.ok);
    assert.deepEqual(res.event, {
      schema_version: 1,
      event_id: '42',
      content_id: CONTENT.id,
      user_id: '22222222-2222-4222-8222-222222222222',
      event_type: 'play',
      event_ts: '2025-06-15T10:20:30.123456Z',
      duration_ms: 30000,
      device: 'ios',
      raw_payload: { app: 'web', v: 2 },
      extra: {},
      content_slug: 'ep-1',
      content_title: 'Episode 1',
      content_type: 'podcast',
      length_seconds: 60,
      publish_ts: '2025-01-01T00:00:00Z',
      engagement_seconds: 30,
      engagement_pct: 50,
      event_date: '2025-06-15',
      event_hour: '2025-06-15T10:00:00.000Z',
      source_ts_ms: NOW - 250,
      processed_ts_ms: NOW,
      origin: 'stream',
      quality_flags: [],
    });
  });

  it('is pure: same input, same output, input untouched', () => {
    const r = row({ raw_payload: '{"k":[1,2]}', extra_col: 1 });
    const before = structuredClone(r);
    const a = enrichEvent(r, CONTENT, { ...META, origin: 'backfill' });
    const b = enrichEvent(r, CONTENT, { ...META, origin: 'backfill' });
    assert.deepEqual(a, b);
    assert.deepEqual(r, before);
    assert.ok(a.ok && a.event.origin === 'backfill');
  });
});

describe('enrichEvent: rejected rows', () => {
  for (const c of REJECT_CASES) {
    it(`${c.name} → ${c.reason}`, () => {
      const content = 'content' in c ? c.content : CONTENT;
      const res = enrichEvent(row(c.row), content, META);
      assert.equal(res.ok, false);
      if (res.ok) return;
      assert.equal(reasonOf(res.error), c.reason);
      assert.equal(res.error.code, c.code);
      assert.ok(res.error.message.startsWith(`${c.reason}: `), res.error.message);
      assert.equal(res.error.retriable, false);
    });
  }
});
