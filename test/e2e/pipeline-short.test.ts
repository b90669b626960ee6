import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runProof } from './harness.js';

/**
 * The short form of the end-to-end proof, part of `npm test`: a few thousand events through the
 * whole pipeline while components are SIGKILLed, the broker and Redis restart once and the
 * external system is down for a while. `npm run test:e2e` runs the long form.
 */
test(
  'every committed row reaches every sink exactly once, bad rows reach the DLQ with a reason',
  { timeout: 900_000 },
  async () => {
    const r = await runProof({
      batches: 12,
      eventsPerBatch: 400,
      pauseMs: 1500,
      kills: 3,
      receiverOutageMs: 6000,
      seed: 11,
      log: (l) => console.log(l),
    });
    console.log(JSON.stringify(r, null, 2));
    assert.equal(r.committedRows, r.expected + r.badRows);
    assert.equal(r.warehouseRows, r.expected, 'warehouse: one row per committed event');
    assert.equal(r.warehouseDistinct, r.expected);
    assert.equal(r.warehouseMissing, 0, 'warehouse: the same event ids as PostgreSQL');
    assert.equal(r.redisWindow, r.redisExpected, 'Redis: window count equals the rows in the window');
    assert.equal(r.receiverUnique, r.expected, 'external: each event processed once');
    assert.equal(r.receiverMissing, 0);
    assert.equal(r.dlqBadRowsFound, r.badRows, 'DLQ: every bad row');
    assert.deepEqual(r.dlqUnexpected, [], 'DLQ: nothing else');
    assert.equal(r.kills.length, 3);
  },
);
