import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SinkRecord } from '../../../src/core/sink-contract.js';
import type { EnrichedEvent } from '../../../src/core/types.js';
import { encodeFactRows, eventMicros } from '../../../src/sinks/warehouse/bigquery/fact-encoder.js';
import { encodeRows, factWriterRows, timestampMicros } from '../../../src/sinks/warehouse/bigquery/row-encoding.js';
import { FACT_TABLE } from '../../../src/sinks/warehouse/schema.js';

/**
 * fact-encoder.ts writes the fact rows' proto bytes itself; row-encoding.ts's protobufjs path
 * (`factWriterRows` + `encodeRows`) is the reference. Every record here must encode to the same
 * bytes both ways: every column type (int64 as number and as text, past 2^32 and 2^53, negative;
 * doubles; timestamps in and out of the fast form; dates before 1970; JSON; repeated strings),
 * NULLs and missing fields (optional and REQUIRED), Unicode in short and long strings.
 */

const LOADED_AT = '2026-12-07T16:45:01.234567Z';

function event(over: Partial<Record<keyof EnrichedEvent, unknown>> = {}): EnrichedEvent {
  return {
    schema_version: 1,
    event_id: '1000000007',
    content_id: '6f1c1d6e-3a57-4a43-9d7e-0c1b2a3d4e5f',
    user_id: 'user-42',
    event_type: 'play',
    event_ts: '2026-12-07T10:11:12.345Z',
    duration_ms: 42_000,
    device: 'ios',
    raw_payload: { session: 7 },
    extra: {},
    content_slug: 'slug-7',
    content_title: 'A title',
    content_type: 'podcast',
    length_seconds: 600,
    publish_ts: '2024-01-01T00:00:00.000Z',
    engagement_seconds: 42,
    engagement_pct: 7,
    event_date: '2026-12-07',
    event_hour: '2026-12-07T10:00:00.000Z',
    source_ts_ms: 1796638272345,
    processed_ts_ms: 1796638272400,
    origin: 'stream',
    quality_flags: [],
    ...over,
  } as EnrichedEvent;
}

const record = (e: EnrichedEvent, offset = '12', partition = 3): SinkRecord => ({
  topic: 't',
  partition,
  offset,
  key: null,
  event: e,
});

const long = (s: string, n: number) => s.repeat(Math.ceil(n / s.length)).slice(0, n);

const CASES: Array<[string, SinkRecord]> = [
  ['an ordinary stream event', record(event())],
  [
    'every optional column NULL',
    record(
      event({
        user_id: null,
        duration_ms: null,
        device: null,
        raw_payload: null,
        extra: null,
        content_type: null,
        length_seconds: null,
        publish_ts: null,
        engagement_seconds: null,
        engagement_pct: null,
      }),
    ),
  ],
  ['optional columns missing', record(event({ user_id: undefined, device: undefined, extra: undefined }))],
  ['quality flags', record(event({ quality_flags: ['implausible_duration', 'invalid_raw_payload', ''] }))],
  ['int64 text past 2^53', record(event({ event_id: '9223372036854775807' }), '9007199254740993')],
  ['int64 text of 16 digits', record(event({ event_id: '1234567890123456' }), '1000000000000000')],
  ['int64 text of 15 digits', record(event({ event_id: '123456789012345' }), '999999999999999')],
  ['int64 zero', record(event({ event_id: '0', duration_ms: 0, length_seconds: 0 }), '0', 0)],
  ['int64 numbers past 2^32 and 2^53', record(event({ duration_ms: 2 ** 32 + 5, length_seconds: 2 ** 60 }))],
  ['negative int64 numbers', record(event({ duration_ms: -1, length_seconds: -(2 ** 40) - 3 }))],
  ['int64 as a fraction', record(event({ duration_ms: 1.5, length_seconds: -2.5 }))],
  [
    'doubles',
    record(event({ engagement_seconds: 0.1, engagement_pct: -0, source_ts_ms: 1.7e12, processed_ts_ms: 2 ** 53 })),
  ],
  ['huge and tiny doubles', record(event({ engagement_seconds: 1.7976931348623157e308, engagement_pct: 5e-324 }))],
  ['a date before 1970', record(event({ event_date: '1969-12-31', event_ts: '1969-12-31T23:59:59.5Z' }))],
  ['a date long before 1970', record(event({ event_date: '1900-03-01', publish_ts: '1900-03-01T00:00:00Z' }))],
  ['event_ts without a fraction', record(event({ event_ts: '2026-12-07T10:11:12Z' }))],
  ['event_ts with microseconds', record(event({ event_ts: '2026-12-07T10:11:12.123456Z' }))],
  ['event_ts with one fraction digit', record(event({ event_ts: '2026-12-07T10:11:12.1Z' }))],
  ['event_ts with nanoseconds', record(event({ event_ts: '2026-12-07T10:11:12.123456789Z' }))],
  ['event_ts with an offset', record(event({ event_ts: '2026-12-07T10:11:12.5+02:00' }))],
  ['event_ts with a space', record(event({ event_ts: '2026-12-07 10:11:12.5Z' }))],
  ['event_ts at 24:00', record(event({ event_ts: '2026-12-07T24:00:00Z' }))],
  ['event_ts on 30 February', record(event({ event_ts: '2024-02-30T01:00:00.000Z' }))],
  ['event_ts in 2255', record(event({ event_ts: '2255-06-01T00:00:00.999999Z' }))],
  [
    'Unicode, short strings',
    record(event({ user_id: 'é', device: 'スマホ', content_title: '🎧 x', content_slug: 'ümlaut-ß' })),
  ],
  [
    'Unicode, long strings (two-byte lengths)',
    record(
      event({
        content_title: long('Ünïcödé 🎧 タイトル ', 300),
        device: long('a', 127),
        user_id: long('b', 128),
        content_slug: long('ü', 42),
      }),
    ),
  ],
  ['ASCII strings at the length boundaries', record(event({ user_id: long('x', 42), device: long('y', 43) }))],
  ['empty strings', record(event({ user_id: '', device: '', content_slug: '', content_title: '' }))],
  [
    'JSON with Unicode, escapes and nesting',
    record(
      event({
        raw_payload: { a: [1, 2.5, null, true], 'k"ey': 'line\nbreak \u0001 é 🎧', nested: { deep: { x: 'y' } } },
        extra: { added_column: long('z', 500) },
      }),
    ),
  ],
  ['JSON as a string value', record(event({ raw_payload: 'just text', extra: [1, 'two'] }))],
  // Left out, both ways (the service then refuses the row, naming the column; `check` keeps such records out).
  ['REQUIRED columns without a value', record(event({ content_slug: null, event_id: undefined }))],
  ['a backfill row', record(event({ origin: 'backfill' }), '-1', -1)],
];

describe('bigquery storage warehouse: the fact rows encoder', () => {
  for (const [name, r] of CASES) {
    it(`encodes ${name} as protobufjs does`, () => {
      const reference = encodeRows(FACT_TABLE, factWriterRows([r], LOADED_AT));
      const ours = encodeFactRows([r], LOADED_AT);
      assert.equal(ours.rows.length, 1);
      assert.deepEqual([...(ours.rows[0] as Buffer)], [...(reference[0] as Uint8Array)]);
    });
  }

  it('encodes a batch: each row its own message, views into one buffer', () => {
    const records = CASES.map(([, r]) => r);
    const reference = encodeRows(FACT_TABLE, factWriterRows(records, LOADED_AT));
    const ours = encodeFactRows(records, LOADED_AT);
    assert.equal(ours.rows.length, records.length);
    ours.rows.forEach((row, i) => assert.deepEqual([...row], [...(reference[i] as Uint8Array)], `row ${i}`));
    assert.equal(
      ours.bytes,
      reference.reduce((n, b) => n + b.length, 0),
    );
  });

  it('grows its buffer past the first guess', () => {
    const big = record(event({ content_title: long('t', 70_000), raw_payload: { p: long('q', 200_000) } }));
    const reference = encodeRows(FACT_TABLE, factWriterRows([big, big], LOADED_AT));
    const ours = encodeFactRows([big, big], LOADED_AT);
    ours.rows.forEach((row, i) => assert.deepEqual([...row], [...(reference[i] as Uint8Array)]));
  });

  it('writes a lone surrogate as Node does (U+FFFD), as protobufjs does for strings of 40 characters or more', () => {
    for (const s of ['a\ud800b', long('a', 45) + '\udc00']) {
      const [row] = encodeFactRows([record(event({ device: s }))], LOADED_AT).rows;
      assert.ok((row as Buffer).includes(Buffer.from(s, 'utf8')));
    }
  });

  it('reads event times as timestampMicros does, over ten thousand instants from 1900 to 2250', () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 10_000; i++) {
      const ms = Math.floor(-2_208_988_800_000 + next() * 11_676_096_000_000);
      const iso = new Date(ms).toISOString();
      const digits = Math.floor(next() * 7); // 0–6 fraction digits
      const fraction = String(Math.floor(next() * 1e6))
        .padStart(6, '0')
        .slice(0, digits);
      const s = `${iso.slice(0, 19)}${digits ? `.${fraction}` : ''}Z`;
      assert.equal(eventMicros(s), timestampMicros(s), s);
    }
  });
});
