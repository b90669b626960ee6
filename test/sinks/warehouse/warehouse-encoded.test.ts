import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import type { EnrichedEvent } from '../../../src/core/types.js';
import { parseEnrichedEvent } from '../../../src/runtime/sink-decode.js';
import type { EncodedBatch, SinkBatch } from '../../../src/core/sink-contract.js';
import type { DuckDbWarehouse } from '../../../src/sinks/warehouse/duckdb/duckdb-warehouse.js';
import { checkWarehouseRecord } from '../../../src/sinks/warehouse/record-check.js';
import { batchOf, duckdbFiles, dumpWarehouse, startedWarehouse, whEvent } from './warehouse-fixtures.js';

/**
 * The DuckDB fast path (`writeEncoded`, src/sinks/warehouse/duckdb/fast-path/) on real DuckDB
 * files: it stores exactly what the checked way (`JSON.parse`, `check`, `write`) stores, and it
 * writes nothing — `needs-check` — for every batch holding a value the checked way would refuse
 * (or that it cannot judge as cheaply), so the runtime's checked way decides those.
 */

const files = duckdbFiles();
const TOPIC = 'enriched';

function encoded(partition: number, values: Array<string | Buffer>, firstOffset: number): EncodedBatch {
  return {
    topic: TOPIC,
    partition,
    records: values.map((v, i) => ({
      offset: String(firstOffset + i),
      value: Buffer.isBuffer(v) ? v : Buffer.from(v),
    })),
    nextOffset: String(firstOffset + values.length),
  };
}

const opened = () => startedWarehouse(files.fresh());

/** The checked way, as the runtime takes it: parse, check (all must pass here), write. */
async function writeChecked(
  sink: DuckDbWarehouse,
  partition: number,
  values: string[],
  firstOffset: number,
): Promise<void> {
  const events = values.map((v) => parseEnrichedEvent(Buffer.from(v)) as EnrichedEvent);
  const batch: SinkBatch = batchOf(TOPIC, partition, events, firstOffset);
  for (const r of batch.records) assert.equal(checkWarehouseRecord(r), null, JSON.stringify(r.event));
  await sink.write(batch);
}

const T = '2024-03-01T10:00:00.000Z';
/** An event with values its type does not allow but `check` accepts (a producer other than ours). */
const loose = (e: EnrichedEvent, patch: Record<string, unknown>): EnrichedEvent =>
  ({ ...e, ...patch }) as unknown as EnrichedEvent;
/** Valid events the processor could produce, and some it would not but `check` accepts. */
const VALID: EnrichedEvent[] = [
  whEvent(1, 'A', 'u1', 'play', T, 1500),
  whEvent(2, 'B', null, 'click', '2024-03-01T10:00:00.123456Z', null, { device: null, origin: 'backfill' }),
  loose(whEvent(3, 'C', 'u3', 'pause', '2024-03-01T15:30:00.5+05:30', 250, { event_hour: '2024-03-01T10:00:00Z' }), {
    publish_ts: null,
  }),
  loose(whEvent(4, 'A', 'u4', 'finish', T, 600000), {
    content_title: 'Ünïcödé ☃ "quoted" \\ back\tslash 😀',
    raw_payload: { n: 1.5, big: 12345678901234, list: [1, 'two', null, { deep: true }], s: 'é\u2028' },
    extra: { drift_col: 'x', n: 0 },
    quality_flags: ['missing_duration', 'late_event'],
    engagement_pct: 33.333333333333336,
  }),
  whEvent(5, 'B', 'u5', 'play', T, 0, {
    raw_payload: null,
    content_type: null,
    length_seconds: null,
    engagement_pct: null,
  }),
  loose(
    whEvent('9007199254740', 'A', 'u6', 'play', T, 9007199254740991, {
      source_ts_ms: 1,
      processed_ts_ms: 9007199254740991,
    }),
    { schema_version: 2 },
  ),
];

describe('duckdb warehouse: the fast path for undecoded batches', () => {
  it('stores exactly what the checked way stores: facts, content_dim and offsets', async () => {
    const values = VALID.map((e) => JSON.stringify(e));
    const fast = await opened();
    const checked = await opened();
    try {
      const result = await fast.sink.writeEncoded(encoded(2, values, 40));
      assert.equal(result.kind, 'written');
      await writeChecked(checked.sink, 2, values, 40);
      // Each record's source commit time for the freshness metric: stream records only.
      assert.deepEqual(
        result.kind === 'written' ? result.sourceTsMs : null,
        VALID.map((e) => (e.origin === 'stream' ? e.source_ts_ms : null)),
      );
    } finally {
      await fast.sink.close();
      await checked.sink.close();
    }
    const [a, b] = [await dumpWarehouse(fast.file), await dumpWarehouse(checked.file)];
    assert.equal((a.facts as unknown[]).length, VALID.length);
    assert.deepEqual(a, b);
  });

  it('a batch sent again adds nothing and stores its offset again; a re-sent event id is skipped', async () => {
    const { sink, file } = await opened();
    try {
      const values = VALID.slice(0, 3).map((e) => JSON.stringify(e));
      assert.equal((await sink.writeEncoded(encoded(0, values, 0))).kind, 'written');
      assert.equal((await sink.writeEncoded(encoded(0, values, 0))).kind, 'written');
      assert.equal(
        (await sink.writeEncoded(encoded(0, [values[1] as string, JSON.stringify(VALID[3])], 3))).kind,
        'written',
      );
      assert.deepEqual((await sink.health()).detail?.inserted, 4);
      assert.deepEqual((await sink.health()).detail?.duplicates, 4);
    } finally {
      await sink.close();
    }
    const d = await dumpWarehouse(file);
    assert.deepEqual(
      (d.facts as Array<{ event_id: string; kafka_offset: string }>).map((r) => [r.event_id, r.kafka_offset]),
      [
        ['1', '0'],
        ['2', '1'],
        ['3', '2'],
        ['4', '4'],
      ],
    );
    assert.deepEqual(d.offsets, [{ topic: TOPIC, kafka_partition: '0', next_offset: '5' }]);
  });

  it('writes nothing for a batch holding a record the check refuses, or one it cannot judge cheaply', async () => {
    const good = VALID[0] as EnrichedEvent;
    const json = (patch: Record<string, unknown>) => JSON.stringify({ ...good, ...patch });
    const refusedByCheck: Array<[string, string]> = [
      ['event_id as a number', json({ event_id: 7 })],
      ['event_id not canonical', json({ event_id: '007' })],
      ['event_id beyond int64', json({ event_id: '9223372036854775808' })],
      ['content_id empty', json({ content_id: '' })],
      ['content_id a number', json({ content_id: 5 })],
      ['user_id a number', json({ user_id: 5 })],
      ['event_type unknown', json({ event_type: 'skip' })],
      ['event_ts not an instant', json({ event_ts: 'yesterday' })],
      ['event_ts without a zone', json({ event_ts: '2024-03-01T10:00:00' })],
      ['event_ts at an offset of +99:00 (DuckDB would read it)', json({ event_ts: '2024-03-01T10:00:00+99:00' })],
      ['event_ts at minute 60', json({ event_ts: '2024-03-01T10:60:00Z' })],
      ['duration_ms a fraction', json({ duration_ms: 1.5 })],
      ['duration_ms a string', json({ duration_ms: '5' })],
      [
        'duration_ms beyond 2^53',
        '{' + json({}).slice(1).replace('"duration_ms":1500', '"duration_ms":9007199254740993'),
      ],
      ['device a boolean', json({ device: false })],
      ['content_slug null', json({ content_slug: null })],
      ['content_slug a number', json({ content_slug: 12 })],
      ['content_title missing', json({ content_title: undefined })],
      ['content_type unknown', json({ content_type: 'film' })],
      ['length_seconds a string', json({ length_seconds: '600' })],
      ['publish_ts not an instant', json({ publish_ts: 'soon' })],
      ['engagement_seconds a string', json({ engagement_seconds: '1.5' })],
      ['engagement_pct a boolean', json({ engagement_pct: true })],
      ['event_date not a date', json({ event_date: '2024-3-1' })],
      ['event_hour not an instant', json({ event_hour: '2024-03-01T10' })],
      ['source_ts_ms a fraction', json({ source_ts_ms: 1.5 })],
      ['processed_ts_ms null', json({ processed_ts_ms: null })],
      ['origin unknown', json({ origin: 'replay' })],
      ['quality_flags with a number', json({ quality_flags: ['ok', 3] })],
      ['quality_flags not a list', json({ quality_flags: 'late' })],
      ['schema_version a string', json({ schema_version: '1' })],
      ['not JSON', '{"not json'],
      ['a JSON array', '[1, 2]'],
      ['no event_id', json({ event_id: undefined })],
    ];
    for (const [name, value] of refusedByCheck) {
      const event = parseEnrichedEvent(Buffer.from(value));
      const verdict =
        event instanceof Error
          ? event
          : checkWarehouseRecord({ topic: TOPIC, partition: 0, offset: '1', key: null, event });
      assert.notEqual(verdict, null, `the checked way refuses: ${name}`);
    }
    const acceptedByCheck: Array<[string, string]> = [
      ['a 19-digit event_id', json({ event_id: '9223372036854775807' })],
      ['7 fraction digits', json({ event_ts: '2024-03-01T10:00:00.1234567Z' })],
      ['an offset as +hh', json({ event_ts: '2024-03-01T10:00:00+02' })],
      ['hour 24', json({ event_ts: '2024-03-01T24:00:00Z' })],
      ['a date JS rolls over', json({ event_date: '2024-02-30' })],
      ['an integer written 1.0', '{' + json({}).slice(1).replace('"duration_ms":1500', '"duration_ms":1500.0')],
      ['pretty-printed JSON', JSON.stringify(good, null, 2)],
      ['a repeated key', json({}).replace('{', '{"device":"web",')],
    ];
    const [head, tail] = json({ content_title: 'X~' }).split('~') as [string, string];
    const invalidUtf8 = Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe]), Buffer.from(tail)]);
    assert.equal(
      checkWarehouseRecord({
        topic: TOPIC,
        partition: 0,
        offset: '1',
        key: null,
        event: parseEnrichedEvent(invalidUtf8) as EnrichedEvent,
      }),
      null,
    );
    for (const [name, value] of [
      ...refusedByCheck,
      ...acceptedByCheck,
      ['bytes that are not UTF-8 (JS reads U+FFFD)', invalidUtf8] as const,
    ]) {
      const { sink, file } = await opened();
      try {
        const result = await sink.writeEncoded(encoded(0, [JSON.stringify(VALID[1]), value], 10));
        assert.deepEqual(result, { kind: 'needs-check' }, name);
      } finally {
        await sink.close();
      }
      const d = await dumpWarehouse(file);
      assert.deepEqual([d.facts, d.offsets], [[], []], `nothing written: ${name}`);
    }
  });

  it('batches of several partitions at once (one decoded while another commits): each row once, every offset, a declined batch frees its stage', async () => {
    const { sink, file } = await opened();
    const events = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) =>
        JSON.stringify(whEvent(from + i, (['A', 'B', 'C'] as const)[i % 3] ?? 'A', `u${i}`, 'play', T, 1000 + i)),
      );
    try {
      // Partitions 1 and 2 share ids 150–199 (a key moved between partitions): stored once.
      const results = await Promise.all([
        sink.writeEncoded(encoded(0, events(1, 100), 0)),
        sink.writeEncoded(encoded(1, events(101, 99), 0)),
        sink.writeEncoded(encoded(2, events(150, 100), 0)),
        sink.writeEncoded(encoded(3, [...events(301, 10), JSON.stringify({ ...VALID[0], event_id: 7 })], 0)),
        sink.writeEncoded(encoded(4, events(401, 100), 0)),
      ]);
      assert.deepEqual(
        results.map((r) => r.kind),
        ['written', 'written', 'written', 'needs-check', 'written'],
      );
      // Every slot was given back: more batches, more than there are slots, still go through.
      const again = await Promise.all(
        [0, 3, 4].map((p, i) => sink.writeEncoded(encoded(p, events(1000 + 100 * i, 50), 100))),
      );
      assert.deepEqual(
        again.map((r) => r.kind),
        ['written', 'written', 'written'],
      );
    } finally {
      await sink.close();
    }
    const d = await dumpWarehouse(file);
    const ids = (d.facts as Array<{ event_id: string }>).map((r) => Number(r.event_id));
    assert.equal(ids.length, 100 + 99 + 50 + 100 + 150);
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual(
      (d.offsets as Array<{ kafka_partition: string; next_offset: string }>).map((o) => [
        o.kafka_partition,
        o.next_offset,
      ]),
      [
        ['0', '150'],
        ['1', '99'],
        ['2', '100'],
        ['3', '150'],
        ['4', '150'],
      ],
    );
  });

  it("the stage keeps at most its slots' last batches: deleted rows are given back, not kept in memory", async () => {
    const { sink, file } = await opened();
    const rows = 100;
    try {
      for (let b = 0; b < 6; b++) {
        const values = Array.from({ length: rows }, (_, i) =>
          JSON.stringify(whEvent(1 + b * rows + i, 'A', 'u', 'play', T, 1000)),
        );
        assert.equal((await sink.writeEncoded(encoded(b % 3, values, b * rows))).kind, 'written');
      }
      // The same instance as the sink's (DuckDB's instance cache): its attached stage database.
      const conn = await (await DuckDBInstance.fromCache(file)).connect();
      try {
        const [[name]] = (
          await conn.runAndReadAll(
            `SELECT database_name FROM duckdb_databases() WHERE database_name LIKE 'engage_stage_%'`,
          )
        ).getRowsJS() as [[string]];
        let held = 0;
        for (const slot of [0, 1]) {
          const reader = await conn.runAndReadAll(
            `SELECT coalesce(sum(count), 0) FROM pragma_storage_info('${name}.encoded_rows_${slot}') WHERE column_name = 'i' AND segment_type = 'VALIDITY'`,
          );
          held += Number((reader.getRowsJS() as [[bigint]])[0][0]);
        }
        // DELETE alone leaves every staged row in memory until a checkpoint (6 × 100 here): ~850 B a row written.
        assert.ok(held > 0 && held <= 2 * rows, `rows held by the stage tables: ${held}`);
      } finally {
        conn.closeSync();
      }
    } finally {
      await sink.close();
    }
  });

  it('writes nothing for a batch that carries an event id twice (the checked way keeps the first copy)', async () => {
    const { sink, file } = await opened();
    try {
      const one = JSON.stringify(VALID[0]);
      assert.deepEqual(await sink.writeEncoded(encoded(0, [one, JSON.stringify(VALID[1]), one], 0)), {
        kind: 'needs-check',
      });
    } finally {
      await sink.close();
    }
    assert.deepEqual((await dumpWarehouse(file)).facts, []);
  });
});
