import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { DuckDbWarehouse } from '../../../src/sinks/warehouse/duckdb/duckdb-warehouse.js';
import { batchOf, ctxOf, duckdbFiles, openReader, whEvent, factCount } from './warehouse-fixtures.js';

/**
 * The DuckDB warehouse recovering against real DuckDB files (one per test, under the env's
 * isolated folder): a dropped table re-created and reported as state lost, stored offsets
 * forgotten with the fact table, and a real process crash before and after COMMIT.
 */

const files = duckdbFiles();
/** A config whose DUCKDB_PATH is a fresh file in a not-yet-existing folder of the env's directory. */
const freshConfig = files.fresh;
const TOPIC = 'enriched';

describe('duckdb warehouse', () => {
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
