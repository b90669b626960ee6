import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContentRow } from '../../src/core/types.js';
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
import { reasonOf } from '../../src/processor/reasons.js';
import { parseTimestamp } from '../../src/processor/validate.js';
import { CONTENT, NOW, row } from './transform-fixtures.js';

/** The processor's decoding of change events and content changes, its DLQ entries and the content join by position. */

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
