import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { DuckDbWarehouse } from '../../src/sinks/warehouse/duckdb/duckdb-warehouse.js';
import { dateToDays, isoToMicros } from '../../src/sinks/warehouse/duckdb/checked/chunk.js';
import { warehouseSinkFactory } from '../../src/sinks/warehouse/index.js';
import { CONTENT_DIM, FACT_TABLE, OFFSETS_TABLE } from '../../src/sinks/warehouse/schema.js';
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
} from './warehouse-fixtures.js';

/**
 * The DuckDB warehouse against real DuckDB files (one per test, under the env's isolated folder):
 * schema creation, every field stored, exactly-once (same batch twice, a re-sent event id, a real
 * process crash before and after COMMIT), content_dim upserts, and the views' figures for a known
 * data set.
 */

const files = duckdbFiles();
/** A config whose DUCKDB_PATH is a fresh file in a not-yet-existing folder of the env's directory. */
const freshConfig = files.fresh;
const TOPIC = 'enriched';

async function factCount(file: string, where = 'true'): Promise<number> {
  const r = await openReader(file);
  try {
    const [row] = await r.rows(`SELECT count(*) AS n FROM engagement_events_enriched WHERE ${where}`);
    return Number(row?.n);
  } finally {
    r.close();
  }
}

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

  it('re-creates a dropped table and reports SINK_STATE_LOST, so the runtime re-reads the offsets', async () => {
    const config = freshConfig();
    const sink = new DuckDbWarehouse(ctxOf(config));
    await sink.start();
    await sink.write(batchOf(TOPIC, 0, [whEvent(1, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1)], 0));
    const r = await openReader(config.DUCKDB_PATH);
    await r.rows(`DROP TABLE warehouse_offsets`);
    r.close();
    await assert.rejects(
      sink.write(batchOf(TOPIC, 0, [whEvent(2, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1)], 1)),
      { code: 'SINK_STATE_LOST' },
    );
    assert.deepEqual(
      await sink.storedOffsets(TOPIC, [0]),
      new Map(),
      'the offsets table is back, empty: the runtime starts over',
    );
    await sink.write(
      batchOf(
        TOPIC,
        0,
        [
          whEvent(1, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1),
          whEvent(2, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1),
        ],
        0,
      ),
    );
    assert.equal(await factCount(config.DUCKDB_PATH), 2, 'the replay from the start adds only the missing row');
    await sink.close();
  });

  it('forgets the stored offsets when the fact table was dropped, so the warehouse is rebuilt', async () => {
    const config = freshConfig();
    const sink = new DuckDbWarehouse(ctxOf(config));
    await sink.start();
    const first = [1, 2, 3].map((id) => whEvent(id, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1));
    await sink.write(batchOf(TOPIC, 0, first, 0));
    const r = await openReader(config.DUCKDB_PATH);
    await r.rows(`DROP VIEW daily_engagement_summary`);
    await r.rows(`DROP VIEW hourly_engagement_trends`);
    await r.rows(`DROP TABLE engagement_events_enriched`);
    r.close();
    await assert.rejects(
      sink.write(batchOf(TOPIC, 0, [whEvent(4, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1)], 3)),
      { code: 'SINK_STATE_LOST' },
    );
    assert.deepEqual(await sink.storedOffsets(TOPIC, [0]), new Map(), 'offsets claiming the lost rows are gone');
    await sink.write(batchOf(TOPIC, 0, [...first, whEvent(4, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1)], 0));
    assert.equal(await factCount(config.DUCKDB_PATH), 4, 'rebuilt from the start');
    await sink.close();
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

describe('duckdb warehouse across a process crash', () => {
  const sinkUrl = pathToFileURL(path.resolve('src/sinks/warehouse/duckdb/duckdb-warehouse.ts')).href;
  const duckUrl = pathToFileURL(path.resolve('node_modules/@duckdb/node-api/lib/index.js')).href;
  /**
   * Writes one batch in a child process that is SIGKILLed just before (or just after) the
   * statement that COMMITs (the offsets share it), through `write` or the fast path `writeEncoded`.
   */
  function crashChild(
    file: string,
    ids: number[],
    killAt: 'before-commit' | 'after-commit',
    how: 'write' | 'writeEncoded' = 'write',
  ): void {
    const events = ids.map((id) => whEvent(id, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1000));
    const batch = batchOf(TOPIC, 0, events, 0);
    const encoded = {
      ...batch,
      records: batch.records.map((r) => ({ offset: r.offset, value: JSON.stringify(r.event) })),
    };
    const write =
      how === 'write'
        ? `await sink.write(${JSON.stringify(batch)});`
        : `const b = ${JSON.stringify(encoded)}; const r = await sink.writeEncoded({ ...b, records: b.records.map((x) => ({ offset: x.offset, value: Buffer.from(x.value) })) }); console.error('not killed', r);`;
    const code = `
      import { DuckDbWarehouse } from ${JSON.stringify(sinkUrl)};
      import { DuckDBConnection } from ${JSON.stringify(duckUrl)};
      const run = DuckDBConnection.prototype.run;
      DuckDBConnection.prototype.run = async function (sql, ...rest) {
        const commits = /(^|;\\s*)COMMIT$/.test(sql);
        if (commits && ${JSON.stringify(killAt)} === 'before-commit') process.kill(process.pid, 'SIGKILL');
        const result = await run.call(this, sql, ...rest);
        if (commits) process.kill(process.pid, 'SIGKILL');
        return result;
      };
      const log = { child: () => log, info() {}, warn() {}, error() {}, debug() {} };
      const sink = new DuckDbWarehouse({ config: { DUCKDB_PATH: ${JSON.stringify(file)} }, log });
      await sink.start();
      ${write}
    `;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      encoding: 'utf8',
      timeout: 30000,
    });
    assert.equal(res.signal, 'SIGKILL', `the child died at ${killAt}: ${res.stderr}`);
  }

  for (const how of ['write', 'writeEncoded'] as const)
    it(`a crash before COMMIT leaves no row and no offset; after COMMIT rows and offset are both durable (${how})`, async () => {
      const file = freshConfig().DUCKDB_PATH;
      crashChild(file, [1, 2, 3], 'before-commit', how);
      const first = new DuckDbWarehouse(ctxOf({ ...files.env().config, DUCKDB_PATH: file }));
      await first.start();
      assert.deepEqual(await first.storedOffsets(TOPIC, [0]), new Map(), 'no offset stored');
      assert.equal(await factCount(file), 0, 'no row stored');
      await first.close();

      crashChild(file, [1, 2, 3], 'after-commit', how);
      const second = new DuckDbWarehouse(ctxOf({ ...files.env().config, DUCKDB_PATH: file }));
      await second.start();
      assert.deepEqual(await second.storedOffsets(TOPIC, [0]), new Map([[0, '3']]), 'the offset survived the crash');
      assert.equal(await factCount(file), 3, 'the rows survived the crash');
      // Kafka's commit was lost in the crash: the runtime re-delivers the batch; nothing is added.
      await second.write(
        batchOf(
          TOPIC,
          0,
          [1, 2, 3].map((id) => whEvent(id, 'A', 'u1', 'play', '2024-03-01T10:00:00.000Z', 1000)),
          0,
        ),
      );
      assert.equal(await factCount(file), 3);
      await second.close();
    });
});
