import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContentRow, EngagementEventRow, QualityFlag } from '../../src/core/types.js';
import { decodeContentChange, type ContentChange } from '../../src/processor/content-decode.js';
import {
  MAX_VERSIONS,
  applyContentChange,
  contentAt,
  isKnown,
  type ContentVersions,
} from '../../src/processor/content-versions.js';
import { decodeChange, sourceLsnOf } from '../../src/processor/decode.js';
import { DLQ_ATTEMPTS_HEADER, priorAttempts, processorDlqEntry } from '../../src/processor/dlq.js';
import { enrichEvent, type EnrichMeta } from '../../src/processor/enrich.js';
import { reasonOf } from '../../src/processor/reasons.js';
import { enrichedJson } from '../../src/processor/enriched-json.js';
import { parseTimestamp, validateEventRow } from '../../src/processor/validate.js';

const NOW = Date.UTC(2025, 5, 15, 12, 0, 0);
const META: EnrichMeta = { sourceTsMs: NOW - 250, processedTsMs: NOW, origin: 'stream' };
const CONTENT: ContentRow = {
  id: '11111111-1111-4111-8111-111111111111',
  slug: 'ep-1',
  title: 'Episode 1',
  content_type: 'podcast',
  length_seconds: 60,
  publish_ts: '2025-01-01T00:00:00Z',
};

function row(over: Record<string, unknown> = {}): EngagementEventRow {
  return {
    id: '42',
    content_id: CONTENT.id,
    user_id: '22222222-2222-4222-8222-222222222222',
    event_type: 'play',
    event_ts: '2025-06-15T10:20:30.123456Z',
    duration_ms: 30000,
    device: 'ios',
    raw_payload: '{"app":"web","v":2}',
    ...over,
  } as EngagementEventRow;
}

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

function envelope(op: string, after: unknown, before: unknown = null, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      before,
      after,
      source: {
        version: '1',
        connector: 'postgresql',
        name: 'engage',
        ts_ms: NOW - 1000,
        snapshot: 'false',
        db: 'x',
        schema: 'public',
        table: 'engagement_events',
        txId: 5,
        lsn: 10,
      },
      op,
      ts_ms: NOW - 900,
      ...extra,
    }),
  );
}

describe('decodeChange', () => {
  const cases: Array<{ name: string; value: Buffer | null; kind: string; reason?: string }> = [
    { name: 'tombstone', value: null, kind: 'skip' },
    { name: 'invalid UTF-8', value: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), kind: 'reject', reason: 'UNDECODABLE' },
    { name: 'not JSON', value: Buffer.from('{"op":'), kind: 'reject', reason: 'UNDECODABLE' },
    { name: 'JSON array', value: Buffer.from('[1,2]'), kind: 'reject', reason: 'UNDECODABLE' },
    { name: 'unknown op', value: envelope('x', row()), kind: 'reject', reason: 'INVALID_ENVELOPE' },
    {
      name: 'no timestamps',
      value: Buffer.from(JSON.stringify({ op: 'c', after: row() })),
      kind: 'reject',
      reason: 'INVALID_ENVELOPE',
    },
    { name: 'create without after', value: envelope('c', null), kind: 'reject', reason: 'INVALID_ENVELOPE' },
    { name: 'update', value: envelope('u', row({ duration_ms: 1 }), row()), kind: 'reject', reason: 'EVENT_UPDATED' },
    { name: 'delete', value: envelope('d', null, row()), kind: 'reject', reason: 'EVENT_DELETED' },
    { name: 'create', value: envelope('c', row()), kind: 'insert' },
    { name: 'snapshot read', value: envelope('r', row()), kind: 'insert' },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.kind}${c.reason ? ` ${c.reason}` : ''}`, () => {
      const d = decodeChange(c.value);
      assert.equal(d.kind, c.kind);
      if (d.kind === 'reject') assert.equal(reasonOf(d.error), c.reason);
    });
  }

  it('takes source.ts_ms as the source time, else the envelope ts_ms', () => {
    const d = decodeChange(envelope('c', row()));
    assert.ok(d.kind === 'insert' && d.sourceTsMs === NOW - 1000 && d.row.id === '42' && d.lsn === 10);
    const noSource = decodeChange(envelope('c', row(), null, { source: null }));
    assert.ok(noSource.kind === 'insert' && noSource.sourceTsMs === NOW - 900);
  });
});

describe('decodeContentChange', () => {
  const key = Buffer.from(JSON.stringify({ id: CONTENT.id }));
  it('create/update upsert the row at its source LSN (extra columns dropped)', () => {
    const c = decodeContentChange(key, envelope('u', { ...CONTENT, length_seconds: 120, views: 5 }));
    assert.deepEqual(c, { kind: 'upsert', row: { ...CONTENT, length_seconds: 120 }, pos: 10 });
  });
  it('delete and tombstone', () => {
    assert.deepEqual(decodeContentChange(key, envelope('d', null, CONTENT)), {
      kind: 'delete',
      id: CONTENT.id,
      pos: 10,
    });
    assert.deepEqual(decodeContentChange(key, null), { kind: 'tombstone', id: CONTENT.id });
  });
  it('malformed records are invalid', () => {
    assert.equal(decodeContentChange(key, Buffer.from('nope')).kind, 'invalid');
    assert.equal(decodeContentChange(key, envelope('c', { ...CONTENT, slug: 3 })).kind, 'invalid');
    assert.equal(decodeContentChange(null, null).kind, 'invalid');
  });
});

describe('processorDlqEntry and parseTimestamp', () => {
  it('keeps the original bytes (base64), key, topic, partition and offset', () => {
    const value = Buffer.from([0x00, 0xff, 0x10]);
    const res = decodeChange(value);
    assert.ok(res.kind === 'reject');
    const entry = processorDlqEntry(
      { topic: 't', partition: 2, offset: '17', key: Buffer.from('{"id":"9"}'), value, priorAttempts: 0 },
      res.error,
      NOW,
    );
    assert.deepEqual(entry, {
      reason: res.error.message,
      code: 'DECODE_FAILED',
      stage: 'processor',
      topic: 't',
      partition: 2,
      offset: '17',
      key: '{"id":"9"}',
      value_base64: value.toString('base64'),
      failed_at: new Date(NOW).toISOString(),
      attempts: 1,
    });
    assert.deepEqual(Buffer.from(entry.value_base64 ?? '', 'base64'), value);
  });

  it('counts the attempts a replayed record carries in its header', () => {
    const res = decodeChange(Buffer.from('not json'));
    assert.ok(res.kind === 'reject');
    const replayed = priorAttempts([{ other: 'x' }, { [DLQ_ATTEMPTS_HEADER]: Buffer.from('2') }]);
    assert.equal(replayed, 2);
    assert.equal(
      processorDlqEntry(
        { topic: 't', partition: 0, offset: '1', key: null, value: null, priorAttempts: replayed },
        res.error,
        NOW,
      ).attempts,
      3,
    );
    assert.equal(priorAttempts(undefined), 0);
    assert.equal(priorAttempts([{ [DLQ_ATTEMPTS_HEADER]: 'garbage' }]), 0);
  });

  const ts: Array<[string, number | null]> = [
    ['2025-06-15T10:20:30Z', Date.UTC(2025, 5, 15, 10, 20, 30)],
    ['2025-06-15T10:20:30.123456789Z', Date.UTC(2025, 5, 15, 10, 20, 30, 123)],
    ['2025-06-15T10:20:30-05:30', Date.UTC(2025, 5, 15, 15, 50, 30)],
    ['2025-06-15T10:20:30+0100', Date.UTC(2025, 5, 15, 9, 20, 30)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2025-02-29T00:00:00Z', null],
    ['2025-13-01T00:00:00Z', null],
    ['2025-06-15T24:00:00Z', null],
    ['2025-06-15', null],
  ];
  for (const [text, ms] of ts) {
    it(`parseTimestamp(${text}) → ${ms === null ? 'null' : new Date(ms).toISOString()}`, () => {
      assert.equal(parseTimestamp(text)?.ms ?? null, ms);
    });
  }
});

describe('content versions: the join uses the content in force at the event position', () => {
  const up = (len: number | null, pos: number | null, extra: Partial<ContentRow> = {}): ContentChange => ({
    kind: 'upsert',
    row: { ...CONTENT, ...extra, length_seconds: len },
    pos,
  });
  const build = (changes: ContentChange[]): ContentVersions => {
    const t: ContentVersions = new Map();
    for (const c of changes) applyContentChange(t, c);
    return t;
  };
  const cases: Array<{
    name: string;
    changes: ContentChange[];
    pos: number | null | undefined;
    length: number | null | undefined;
  }> = [
    { name: 'event after the change sees it', changes: [up(100, 10), up(200, 20)], pos: 25, length: 200 },
    {
      name: 'event before the change (processed later) does not',
      changes: [up(100, 10), up(200, 20)],
      pos: 15,
      length: 100,
    },
    { name: 'same position (same transaction) applies', changes: [up(100, 10), up(200, 20)], pos: 20, length: 200 },
    { name: 'no event position: latest', changes: [up(100, 10), up(200, 20)], pos: null, length: 200 },
    {
      name: 'event older than every kept version: the oldest kept',
      changes: [up(100, 10), up(200, 20)],
      pos: 5,
      length: 100,
    },
    {
      name: 'a change without a position applies from its arrival',
      changes: [up(100, 10), up(300, null)],
      pos: 11,
      length: 300,
    },
    { name: 're-delivered older change lands in order', changes: [up(200, 20), up(100, 10)], pos: 30, length: 200 },
    {
      name: 'deleted at 30: unknown for events after it',
      changes: [up(100, 10), { kind: 'delete', id: CONTENT.id, pos: 30 }],
      pos: 31,
      length: undefined,
    },
    {
      name: 'deleted at 30: still known for events before it',
      changes: [up(100, 10), { kind: 'delete', id: CONTENT.id, pos: 30 }, { kind: 'tombstone', id: CONTENT.id }],
      pos: 29,
      length: 100,
    },
    {
      name: 'tombstone alone removes the id',
      changes: [up(100, 10), { kind: 'tombstone', id: CONTENT.id }],
      pos: 11,
      length: undefined,
    },
    { name: 'unknown id', changes: [], pos: 1, length: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const row = contentAt(build(c.changes), CONTENT.id, c.pos);
      assert.equal(row === undefined ? undefined : row.length_seconds, c.length);
    });
  }
  it('keeps the previous title/slug for an unchanged TOAST placeholder, and at most MAX_VERSIONS versions', () => {
    const t = build([up(100, 1), up(100, 2, { title: '__debezium_unavailable_value' })]);
    assert.equal(contentAt(t, CONTENT.id, 2)?.title, CONTENT.title);
    for (let i = 3; i < 30; i++) applyContentChange(t, up(i, i));
    assert.equal(t.get(CONTENT.id)?.length, MAX_VERSIONS);
    assert.ok(isKnown(t, CONTENT.id));
  });
});

it('content versions follow commit order: the commit LSN from source.sequence, else source.lsn', () => {
  assert.equal(
    sourceLsnOf({ source: { lsn: 500, sequence: '["900","500"]' } }),
    900,
    'the commit LSN wins over the change LSN',
  );
  assert.equal(sourceLsnOf({ source: { lsn: 500, sequence: ['901', '500'] } }), 901);
  assert.equal(sourceLsnOf({ source: { lsn: 300 } }), 300, 'a snapshot row: its consistent point');
  assert.equal(sourceLsnOf({ source: { lsn: 300, sequence: 'not json' } }), 300);
  assert.equal(sourceLsnOf({ source: {} }), null);
});
