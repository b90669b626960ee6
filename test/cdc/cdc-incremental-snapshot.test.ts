import { test } from 'node:test';
import { incrementalSnapshotCase } from './incremental-snapshot.js';

/** 200,000 rows snapshotted in chunks of 5,000 while a writer inserts, updates and deletes; SIGKILLed twice mid-snapshot (incremental-snapshot.ts). */
test(
  'incremental snapshot while streaming, SIGKILLed during it: every row once, the stream wins, order kept',
  { timeout: 300_000 },
  (t) =>
    incrementalSnapshotCase({
      rows: 200_000,
      chunkRows: 5_000,
      maxRowsPerSecond: 20_000,
      kills: 2,
      chunksPerKill: 12,
      timeoutMs: Number(process.env.TEST_TIMEOUT_MS ?? 150_000),
      diagnostic: (l) => t.diagnostic(l),
    }),
);
