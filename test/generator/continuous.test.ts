import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runContinuous } from '../../src/generator/modes.js';
import { useTestDatabase } from '../helpers/test-database.js';

/**
 * Continuous mode against the real PostgreSQL: about rate × duration live events stamped with the
 * clock, sessions in order, and a clean stop on abort. (No timing assertions beyond the count.)
 */

describe('generator continuous mode', () => {
  const t = useTestDatabase();
  test('--rate 40 --duration 2 produces about 80 live events, stamped now', async () => {
    const t0 = Date.now();
    const summary = await runContinuous(t.env.config, { rate: 40, durationSeconds: 2, seed: 11 });
    const t1 = Date.now();
    assert.ok(summary.rows >= 60 && summary.rows <= 100, `${summary.rows} rows`);
    const row = (
      await t.db.query<{ n: number; lo: Date; hi: Date; sessions: number }>(
        `SELECT count(*)::int AS n, min(event_ts) AS lo, max(event_ts) AS hi, count(DISTINCT raw_payload->>'session_id')::int AS sessions FROM engagement_events`,
      )
    ).rows[0];
    assert.equal(row?.n, summary.rows);
    assert.ok(
      row && row.lo.getTime() >= t0 - 1000 && row.hi.getTime() <= t1 + 1000,
      "timestamps are the run's wall-clock time",
    );
    assert.ok((row?.sessions ?? 0) > 5, 'sessions interleave');
    const outOfOrder = (
      await t.db.query<{ n: number }>(`
      SELECT count(*)::int AS n FROM (
        SELECT (raw_payload->>'seq')::int AS seq,
               lag((raw_payload->>'seq')::int) OVER (PARTITION BY raw_payload->>'session_id' ORDER BY id) AS prev
          FROM engagement_events) s
       WHERE prev IS NOT NULL AND seq <> prev + 1`)
    ).rows[0];
    assert.equal(outOfOrder?.n, 0, "each session's events are written in order");
    const bad = (
      await t.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM engagement_events WHERE (event_type = 'click') <> (duration_ms IS NULL) OR NOT raw_payload ? 'app_version'`,
      )
    ).rows[0];
    assert.equal(bad?.n, 0);
  });

  test('without a duration it runs until aborted, then stops cleanly having kept what it wrote', async () => {
    await t.db.query('TRUNCATE engagement_events');
    const abort = new AbortController();
    const run = runContinuous(
      t.env.config,
      {
        rate: 50,
        seed: 12,
        onProgress: (p) => {
          if (p.rows >= 20) abort.abort();
        },
      },
      abort.signal,
    );
    const timeout = setTimeout(() => abort.abort(), 20_000);
    const summary = await run;
    clearTimeout(timeout);
    assert.ok(summary.rows >= 20, `${summary.rows} rows before the stop`);
    const row = (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM engagement_events')).rows[0];
    assert.equal(row?.n, summary.rows);
  });
});
