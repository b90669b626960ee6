import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DuckDbWarehouse } from '../../../src/sinks/warehouse/duckdb/duckdb-warehouse.js';
import { dateToDays, isoToMicros } from '../../../src/sinks/warehouse/duckdb/checked/chunk.js';
import { warehouseSinkFactory } from '../../../src/sinks/warehouse/index.js';
import { CONTENT_DIM, FACT_TABLE, OFFSETS_TABLE } from '../../../src/sinks/warehouse/schema.js';
import { batchOf, ctxOf, duckdbFiles, openReader, whEvent } from './warehouse-fixtures.js';

/**
 * The DuckDB warehouse against real DuckDB files (one per test, under the env's isolated folder):
 * schema creation, every field stored, strings of every length and NULLs and lists across vector
 * chunks, what check() refuses, and the typed values' conversions.
 */

const files = duckdbFiles();
/** A config whose DUCKDB_PATH is a fresh file in a not-yet-existing folder of the env's directory. */
const freshConfig = files.fresh;
const TOPIC = 'enriched';

describe('duckdb warehouse', () => {
  it('creates the folder, the tables and the views on an empty file, and again idempotently', async () => {
    const config = freshConfig();
    assert.equal(existsSync(path.dirname(config.DUCKDB_PATH)), false);
    for (let i = 0; i < 2; i++) {
      const sink = new DuckDbWarehouse(ctxOf(config));
      await sink.start();
      await sink.close();
    }
    const r = await openReader(config.DUCKDB_PATH);
    try {
      const tables = await r.rows(
        `SELECT table_name, table_type FROM information_schema.tables WHERE table_catalog = current_database() ORDER BY table_name`,
      );
      assert.deepEqual(tables, [
        { table_name: 'content_dim', table_type: 'BASE TABLE' },
        { table_name: 'daily_engagement_summary', table_type: 'VIEW' },
        { table_name: 'engagement_events_enriched', table_type: 'BASE TABLE' },
        { table_name: 'hourly_engagement_trends', table_type: 'VIEW' },
        { table_name: 'warehouse_offsets', table_type: 'BASE TABLE' },
      ]);
      for (const t of [FACT_TABLE, CONTENT_DIM, OFFSETS_TABLE]) {
        const cols = await r.rows(
          `SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() AND table_name = '${t.name}' ORDER BY ordinal_position`,
        );
        assert.deepEqual(
          cols.map((c) => c.column_name),
          t.columns.map((c) => c.name),
          `${t.name} has the schema's columns`,
        );
      }
      assert.deepEqual(await r.rows(`SELECT count(*) AS n FROM daily_engagement_summary`), [{ n: 0 }]);
    } finally {
      r.close();
    }
  });

  it('stores every field of the enriched event, and the offset with it', async () => {
    const config = freshConfig();
    const sink = new DuckDbWarehouse(ctxOf(config));
    await sink.start();
    const e = whEvent('9007199254740993', 'A', 'u1', 'play', '2024-03-01T10:15:00.123456Z', 61500, {
      raw_payload: { a: [1, 'x'], quote: `it's "quoted"` },
      extra: { app_version: '7.1' },
      quality_flags: ['missing_device', 'pct_above_100'],
      origin: 'backfill',
      device: null,
      engagement_pct: 0.1 + 0.2, // a float that must come back bit-exact
    });
    await sink.write(batchOf(TOPIC, 2, [e], 41));
    assert.deepEqual(await sink.storedOffsets(TOPIC, [0, 1, 2]), new Map([[2, '42']]));
    await sink.close();
    const r = await openReader(config.DUCKDB_PATH);
    try {
      const [row] =
        await r.rows(`SELECT CAST(event_id AS VARCHAR) AS event_id, content_id, user_id, event_type, epoch_us(event_ts) AS event_ts, duration_ms, device,
        CAST(raw_payload AS VARCHAR) AS raw_payload, CAST(extra AS VARCHAR) AS extra, content_slug, content_title, content_type, length_seconds, epoch_ms(publish_ts) AS publish_ts,
        engagement_seconds, engagement_pct, CAST(event_date AS VARCHAR) AS event_date, epoch_ms(hour_bucket) AS hour_bucket, source_ts_ms, processed_ts_ms, origin, quality_flags,
        schema_version, kafka_partition, kafka_offset, loaded_at IS NOT NULL AS loaded FROM engagement_events_enriched`);
      assert.deepEqual(row, {
        event_id: '9007199254740993',
        content_id: e.content_id,
        user_id: 'u1',
        event_type: 'play',
        event_ts: Date.parse('2024-03-01T10:15:00.123Z') * 1000 + 456, // microseconds kept
        duration_ms: 61500,
        device: null,
        raw_payload: JSON.stringify(e.raw_payload),
        extra: '{"app_version":"7.1"}',
        content_slug: 'alpha',
        content_title: 'Alpha',
        content_type: 'podcast',
        length_seconds: 600,
        publish_ts: Date.parse('2024-01-01T00:00:00.000Z'),
        engagement_seconds: 61.5,
        engagement_pct: 0.1 + 0.2,
        event_date: '2024-03-01',
        hour_bucket: Date.parse('2024-03-01T10:00:00.000Z'),
        source_ts_ms: e.source_ts_ms,
        processed_ts_ms: e.processed_ts_ms,
        origin: 'backfill',
        quality_flags: ['missing_device', 'pct_above_100'],
        schema_version: 1,
        kafka_partition: 2,
        kafka_offset: 41,
        loaded: true,
      });
    } finally {
      r.close();
    }
  });

  it('stores strings of every length and script, NULLs and lists exactly, across several vector chunks', async () => {
    const config = freshConfig();
    const sink = new DuckDbWarehouse(ctxOf(config));
    await sink.start();
    // Strings up to 12 UTF-8 bytes are written inline, longer or non-ASCII ones by DuckDB (src/sinks/warehouse/duckdb/checked/vectors.ts).
    const devices = [
      null,
      '',
      'a',
      'twelve-bytes',
      'thirteen-byte',
      'café',
      'ünï',
      '日本語のテキスト',
      'x'.repeat(300),
      'tab\tnew\nline',
      'emoji 🎧',
    ];
    const events = Array.from({ length: 5000 }, (_, i) =>
      whEvent(
        1000 + i,
        i % 2 === 0 ? 'A' : 'B',
        i % 7 === 0 ? null : `u${i}`,
        'play',
        `2024-03-01T10:${String(i % 60).padStart(2, '0')}:00.000Z`,
        i % 5 === 0 ? null : i,
        {
          device: devices[i % devices.length] ?? null,
          quality_flags: i % 3 === 0 ? [] : i % 3 === 1 ? ['missing_device'] : ['missing_device', 'pct_above_100'],
          engagement_pct: i % 4 === 0 ? null : i / 7,
        },
      ),
    );
    await sink.write(batchOf(TOPIC, 0, events, 0));
    await sink.close();
    const r = await openReader(config.DUCKDB_PATH);
    try {
      const rows = await r.rows(
        `SELECT CAST(event_id AS VARCHAR) AS id, user_id, device, duration_ms, engagement_pct, quality_flags, kafka_offset FROM engagement_events_enriched ORDER BY event_id`,
      );
      assert.equal(rows.length, events.length);
      rows.forEach((row, i) => {
        const e = events[i] as (typeof events)[number];
        assert.deepEqual(
          row,
          {
            id: e.event_id,
            user_id: e.user_id,
            device: e.device,
            duration_ms: e.duration_ms,
            engagement_pct: e.engagement_pct,
            quality_flags: e.quality_flags,
            kafka_offset: i,
          },
          `row ${i}`,
        );
      });
    } finally {
      r.close();
    }
  });

  it('rejects, in check, values the warehouse cannot store', () => {
    const sink = warehouseSinkFactory.create(ctxOf(files.env().config));
    const ok = batchOf(TOPIC, 0, [whEvent(1, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1)], 0).records[0];
    assert.ok(ok && sink.check);
    assert.equal(sink.check(ok), null);
    for (const bad of [
      { event_id: 'abc' },
      { event_id: '99999999999999999999' },
      { event_ts: 'yesterday' },
      { event_date: '2024-3-1' },
      { engagement_pct: Number.NaN },
      { event_type: 'skip' },
    ]) {
      const err = sink.check({ ...ok, event: { ...ok.event, ...bad } as typeof ok.event });
      assert.equal(err?.code, 'INVALID_VALUE', JSON.stringify(bad));
    }
  });
});

describe('duckdb typed values', () => {
  it('converts ISO-8601 instants to microseconds exactly, any offset, and dates to days', () => {
    const ms = Date.parse('2024-03-01T10:15:00.123Z');
    assert.equal(isoToMicros('2024-03-01T10:15:00.123456Z'), BigInt(ms) * 1000n + 456n);
    assert.equal(isoToMicros('2024-03-01T12:15:00.123456+02:00'), BigInt(ms) * 1000n + 456n);
    assert.equal(
      isoToMicros('2024-03-01 05:45:00.123456789-0430'),
      BigInt(ms) * 1000n + 456n,
      'nanoseconds truncated to micros',
    );
    assert.equal(isoToMicros('2024-03-01T10:15Z'), BigInt(Date.parse('2024-03-01T10:15:00Z')) * 1000n);
    assert.equal(isoToMicros('1969-12-31T23:59:59.999999Z'), -1n);
    assert.throws(() => isoToMicros('2024-03-01T10:15:00'), { code: 'SINK_REJECTED' }, 'an instant needs a zone');
    assert.equal(dateToDays('1970-01-02'), 1);
    assert.equal(dateToDays('2024-03-01'), 19783);
    assert.throws(() => dateToDays('2024-02-30x'), { code: 'SINK_REJECTED' });
  });
});
