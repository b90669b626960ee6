import { test } from 'node:test';
import { incrementalSnapshotCase } from '../cdc/incremental-snapshot.js';

/** Issue #29: 2,000,000 rows snapshotted while a writer inserts, updates and deletes; the CDC SIGKILLed three times during the snapshot. */
test(
  'incremental snapshot of 2,000,000 rows, SIGKILLed three times: every row once, the stream wins, order kept',
  { timeout: 1_800_000 },
  (t) =>
    incrementalSnapshotCase({
      rows: 2_000_000,
      chunkRows: 10_000,
      maxRowsPerSecond: 50_000,
      kills: 3,
      chunksPerKill: 40,
      timeoutMs: 900_000,
      diagnostic: (l) => t.diagnostic(l),
    }),
);
