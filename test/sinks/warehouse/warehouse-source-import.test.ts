import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { ContentRow, EngagementEventRow, EnrichedEvent } from '../../../src/core/types.js';
import { enrichEvent } from '../../../src/processor/enrich.js';
import { DIRECT_OFFSET, DIRECT_PARTITION, type SinkBatch } from '../../../src/core/sink-contract.js';
import { SOURCE_CSV_COLUMNS, type SourcePage } from '../../../src/sinks/source-import.js';
import type { DuckDbWarehouse } from '../../../src/sinks/warehouse/duckdb/duckdb-warehouse.js';
import { checkWarehouseRecord } from '../../../src/sinks/warehouse/record-check.js';
import { duckdbFiles, dumpWarehouse, startedWarehouse } from './warehouse-fixtures.js';

/**
 * The DuckDB bulk import (`importSourcePage`, src/sinks/warehouse/duckdb/bulk-import/) on real
 * DuckDB files: for rows the stream's transform accepts it stores exactly what `enrichEvent`
 * followed by `write` stores, and for every row the transform rejects (or the import cannot judge
 * as cheaply) it writes nothing and declines the page, which the backfill then delivers row by row.
 */

const files = duckdbFiles();
const TOPIC = 'backfill:test';
const NOW = Date.parse('2025-08-06T12:00:00.000Z');

const CONTENT: ContentRow[] = [
  {
    id: '11111111-1111-4111-8111-111111111111',
    slug: 'alpha',
    title: 'Alpha "quoted", Ünïcödé ☃',
    content_type: 'podcast',
    length_seconds: 600,
    publish_ts: '2024-01-01T00:00:00.000000Z',
  },
  {
    id: '22222222-2222-4222-8222-222222222222',
    slug: 'beta',
    title: 'Beta',
    content_type: null,
    length_seconds: null,
    publish_ts: '2024-02-01T08:30:00.123456Z',
  },
  {
    id: '33333333-3333-4333-8333-333333333333',
    slug: 'gamma',
    title: 'Gamma',
    content_type: 'video',
    length_seconds: 0,
    publish_ts: '2024-03-01T00:00:00.000000Z',
  },
  {
    id: '44444444-4444-4444-8444-444444444444',
    slug: 'delta',
    title: 'Delta',
    content_type: 'newsletter',
    length_seconds: 10,
    publish_ts: '2024-04-01T00:00:00.000000Z',
  },
  // Content the transform passes on but the warehouse's check refuses, or the import does not judge.
  {
    id: '66666666-6666-4666-8666-666666666666',
    slug: 'epsilon',
    title: 'Epsilon',
    content_type: 'audio' as ContentRow['content_type'],
    length_seconds: 10,
    publish_ts: '2024-05-01T00:00:00.000000Z',
  },
  {
    id: '77777777-7777-4777-8777-777777777777',
    slug: 'zeta',
    title: 'Zeta',
    content_type: 'video',
    length_seconds: 10,
    publish_ts: '2024-06-01 00:00:00+00',
  },
];
const [A, B, C, D] = CONTENT.map((c) => c.id) as [string, string, string, string];

const row = (id: number | string, patch: Partial<Record<keyof EngagementEventRow, unknown>> = {}): EngagementEventRow =>
  ({
    id: String(id),
    content_id: A,
    user_id: `9968845d-990f-4651-a78e-e6d5fa34f${String(id).padStart(3, '0').slice(-3)}`,
    event_type: 'play',
    event_ts: '2025-08-05T12:00:02.318000Z',
    duration_ms: 1500,
    device: 'ios',
    raw_payload: '{"seq": 0, "country": "US"}',
    ...patch,
  }) as EngagementEventRow;

/** Rows the transform accepts, with every kind of value PostgreSQL can hold for them. */
const GOOD: EngagementEventRow[] = [
  row(1),
  row(2, { content_id: B, user_id: null, device: null, duration_ms: null, event_type: 'click' }),
  row(3, { content_id: C, duration_ms: 0, event_type: 'pause', event_ts: '2025-08-05T12:59:59.999999Z' }),
  row(4, { content_id: D, duration_ms: 600000, event_type: 'finish', raw_payload: null }),
  row(5, {
    device: '',
    raw_payload:
      '{"s": "é, \\"q\\"\\n☃ 😀", "list": [1, "two", null, {"deep": true}], "n": 1.5, "big": 12345678901234}',
  }),
  row(6, { device: 'tv, "living room"\nsecond line', duration_ms: 2147483647 }),
  row(7, { duration_ms: 1, event_ts: '2000-01-01T00:00:00.000000Z' }),
  row(8, { event_ts: new Date(NOW + 86_400_000).toISOString().replace('Z', '999Z') }),
  row('900719925474099', { event_type: 'pause', duration_ms: 333 }),
  // Either side of the implausible-duration limit: length 10 s → 3,700,000 ms; unknown length → 24 h.
  row(9, { content_id: D, duration_ms: 3_700_000 }),
  row(10, { content_id: D, duration_ms: 3_700_001 }),
  row(11, { content_id: B, duration_ms: 86_400_001 }),
];

/** Rows `enrichEvent` rejects, or (`true` third) that it accepts but the import does not judge; each with a good row in a page. */
const DECLINED: Array<[string, EngagementEventRow, boolean?]> = [
  ['negative duration', row(20, { duration_ms: -1 })],
  ['no content_id', row(21, { content_id: null })],
  ['unknown content', row(22, { content_id: '55555555-5555-4555-8555-555555555555' })],
  ['no event_type', row(23, { event_type: null })],
  ['event_type not in the list', row(24, { event_type: 'PLAY' })],
  ['before 2000', row(25, { event_ts: '1999-12-31T23:59:59.999999Z' })],
  [
    'more than a day ahead by 1 ms',
    row(26, { event_ts: new Date(NOW + 86_400_001).toISOString().replace('Z', '000Z') }),
  ],
  ['a year of five digits', row(27, { event_ts: '12025-08-05T12:00:02.318000Z' })],
  ['a timestamp not in to_char form', row(28, { event_ts: '2025-08-05 12:00:02+00' }), true],
  ['a negative id', row(-29)],
  ['a 19-digit id', row('1000000000000000000'), true],
  ['raw_payload not JSON (the JS way flags it)', row(30, { raw_payload: '{"not json' }), true],
  [
    'content_type not in the list (check refuses it)',
    row(31, { content_id: '66666666-6666-4666-8666-666666666666' }),
    true,
  ],
  ['publish_ts not in to_char form', row(32, { content_id: '77777777-7777-4777-8777-777777777777' }), true],
];

let fileNo = 0;
/** The rows as COPY (FORMAT csv) writes them: NULL unquoted and empty, quotes where needed. */
function csvFile(dir: string, rows: readonly EngagementEventRow[]): string {
  const field = (v: unknown) => {
    if (v === null || v === undefined) return '';
    const s = String(v);
    return s === '' || /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const file = path.join(dir, `page-${++fileNo}.csv`);
  writeFileSync(file, rows.map((r) => `${SOURCE_CSV_COLUMNS.map((c) => field(r[c])).join(',')}\n`).join(''));
  return file;
}

const opened = () => startedWarehouse(files.fresh());

const page = (
  sink: { file: string },
  rows: readonly EngagementEventRow[],
  extra: Partial<SourcePage> = {},
): SourcePage => ({
  file: csvFile(path.dirname(sink.file), rows),
  rows: rows.length,
  content: CONTENT,
  nowMs: NOW,
  topic: TOPIC,
  deliveredBefore: 0,
  ...extra,
});

/** The row-by-row way, as the direct backfill takes it: enrichEvent, check (all must pass), write. */
async function writeRows(sink: DuckDbWarehouse, rows: readonly EngagementEventRow[]): Promise<void> {
  const events = rows.map((r) => {
    const res = enrichEvent(
      r,
      CONTENT.find((c) => c.id === r.content_id),
      { sourceTsMs: NOW, processedTsMs: NOW, origin: 'backfill' },
    );
    assert.ok(res.ok, `accepted: ${JSON.stringify(r)}`);
    return res.event as EnrichedEvent;
  });
  const batch: SinkBatch = {
    topic: TOPIC,
    partition: DIRECT_PARTITION,
    records: events.map((event) => ({
      topic: TOPIC,
      partition: DIRECT_PARTITION,
      offset: DIRECT_OFFSET,
      key: event.content_id,
      event,
    })),
    nextOffset: String(events.length),
  };
  for (const r of batch.records) assert.equal(checkWarehouseRecord(r), null, JSON.stringify(r.event));
  await sink.write(batch);
}

describe('warehouse bulk import of source rows (DuckDB)', () => {
  it('stores exactly what enrichEvent and write store, and a page imported again adds nothing', async () => {
    const bulk = await opened();
    const rows = await opened();
    try {
      assert.deepEqual(await bulk.sink.importSourcePage(page(bulk, GOOD)), {
        kind: 'written',
        rows: GOOD.length,
        inserted: GOOD.length,
      });
      await writeRows(rows.sink, GOOD);
      assert.deepEqual(
        await bulk.sink.importSourcePage(page(bulk, GOOD)),
        { kind: 'written', rows: GOOD.length, inserted: 0 },
        'again: written, every id already stored',
      );
      assert.equal((await bulk.sink.health()).detail?.inserted, GOOD.length);
      assert.equal((await bulk.sink.health()).detail?.duplicates, GOOD.length);
    } finally {
      await bulk.sink.close();
      await rows.sink.close();
    }
    const [a, b] = [await dumpWarehouse(bulk.file), await dumpWarehouse(rows.file)];
    assert.equal((a.facts as unknown[]).length, GOOD.length);
    assert.deepEqual(a.facts, b.facts);
    assert.deepEqual(a.content, b.content);
    assert.deepEqual(a.offsets, [{ topic: TOPIC, kafka_partition: '-1', next_offset: String(GOOD.length) }]);
  });

  it('declines, writing nothing, every page holding a row the transform rejects or it cannot judge', async () => {
    const { sink, file } = await opened();
    try {
      for (const [name, bad, jsAccepts = false] of DECLINED) {
        const res = enrichEvent(
          bad,
          CONTENT.find((c) => c.id === bad.content_id),
          { sourceTsMs: NOW, processedTsMs: NOW, origin: 'backfill' },
        );
        assert.equal(res.ok, jsAccepts, `enrichEvent ${jsAccepts ? 'accepts' : 'rejects'}: ${name}`);
        assert.deepEqual(
          (await sink.importSourcePage(page({ file }, [GOOD[0] as EngagementEventRow, bad]))).kind,
          'declined',
          name,
        );
      }
      assert.equal(
        (await sink.importSourcePage(page({ file }, GOOD.slice(0, 2), { rows: 3 }))).kind,
        'declined',
        'a file holding another count of rows than COPY wrote',
      );
      const broken = page({ file }, GOOD.slice(0, 2));
      writeFileSync(broken.file, 'not,a,row\n');
      assert.equal(
        (await sink.importSourcePage(broken)).kind,
        'declined',
        'a file that is not the CSV of SOURCE_CSV_COLUMNS',
      );
    } finally {
      await sink.close();
    }
    const stored = await dumpWarehouse(file);
    assert.deepEqual(stored.facts, [], 'nothing written');
    assert.deepEqual(stored.offsets, []);
  });
});
