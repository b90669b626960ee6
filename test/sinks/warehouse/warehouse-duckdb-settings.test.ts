import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Config } from '../../../src/config/load.js';
import { PipelineError } from '../../../src/core/errors.js';
import { DuckDbWarehouse } from '../../../src/sinks/warehouse/duckdb/duckdb-warehouse.js';
import { batchOf, ctxOf, duckdbFiles, openReader, whEvent } from './warehouse-fixtures.js';

/**
 * The DuckDB warehouse's instance settings from the config, read back live through the same
 * process's cached instance: DUCKDB_THREADS and DUCKDB_MEMORY_LIMIT, and the errors that name the
 * limit when it is too small to open the file or to write a batch.
 */

const freshConfig = duckdbFiles().fresh;
const TOPIC = 'enriched';

describe('duckdb warehouse settings', () => {
  it('applies DUCKDB_THREADS (default 1) and DUCKDB_MEMORY_LIMIT (DuckDB`s default when unset); a limit too small is named', async () => {
    const settingsOf = async (config: Config): Promise<string> => {
      const sink = new DuckDbWarehouse(ctxOf(config));
      await sink.start();
      try {
        await sink.write(batchOf(TOPIC, 0, [whEvent('77001', 'A', 'u1', 'play', '2024-03-01T10:15:00Z', 1000)], 0));
        const r = await openReader(config.DUCKDB_PATH); // the same process: DuckDB's cached instance
        try {
          const [row] = await r.rows(`SELECT current_setting('threads') AS t, current_setting('memory_limit') AS m`);
          return `${String(row?.t)} ${String(row?.m)}`;
        } finally {
          r.close();
        }
      } finally {
        await sink.close();
      }
    };
    assert.equal(await settingsOf({ ...freshConfig(), DUCKDB_MEMORY_LIMIT: '512MB' }), '1 488.2 MiB');
    const defaults = (await settingsOf({ ...freshConfig(), DUCKDB_THREADS: 2 })).split(' ');
    assert.equal(defaults[0], '2');
    assert.notEqual(defaults.slice(1).join(' '), '488.2 MiB', 'no limit set: DuckDB`s own');

    // Too small to open the file: a misconfiguration that names the setting, not a retriable failure.
    const tiny = new DuckDbWarehouse(ctxOf({ ...freshConfig(), DUCKDB_MEMORY_LIMIT: '1MB' }));
    await assert.rejects(
      tiny.start(),
      (err: unknown) =>
        err instanceof PipelineError &&
        err.code === 'SERVICE_MISCONFIGURED' &&
        !err.retriable &&
        /raise DUCKDB_MEMORY_LIMIT/.test(err.message),
    );
    // Enough to open, too small for a 20,000-row transaction: retriable, naming the setting.
    const small = new DuckDbWarehouse(ctxOf({ ...freshConfig(), DUCKDB_MEMORY_LIMIT: '8MB' }));
    await small.start();
    try {
      const events = Array.from({ length: 20_000 }, (_, i) =>
        whEvent(String(880_000 + i), 'A', `u${i}`, 'play', '2024-03-01T10:15:00Z', 1000, {
          raw_payload: { pad: 'x'.repeat(200) },
        }),
      );
      await assert.rejects(
        small.write(batchOf(TOPIC, 0, events, 0)),
        (err: unknown) =>
          err instanceof PipelineError &&
          err.code === 'SINK_WRITE_FAILED' &&
          err.retriable &&
          /raise DUCKDB_MEMORY_LIMIT/.test(err.message),
      );
    } finally {
      await small.close();
    }
  });
});
