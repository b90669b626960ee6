import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runProof } from './harness.js';

/**
 * The long end-to-end proof (`npm run test:e2e`): tens of thousands of events, ten random SIGKILLs,
 * a broker restart, a Redis restart, a longer external outage; then every count is proven.
 */
test('the long proof: exactly once everywhere under faults', { timeout: 1_800_000 }, async () => {
  const r = await runProof({
    batches: 40,
    eventsPerBatch: 1000,
    pauseMs: 1000,
    kills: 10,
    receiverOutageMs: 15000,
    seed: 2026,
    log: (l) => console.log(l),
  });
  console.log(JSON.stringify(r, null, 2));
  assert.equal(r.committedRows, r.expected + r.badRows);
  assert.equal(r.warehouseRows, r.expected);
  assert.equal(r.warehouseDistinct, r.expected);
  assert.equal(r.warehouseMissing, 0);
  assert.equal(r.redisWindow, r.redisExpected);
  assert.equal(r.receiverUnique, r.expected);
  assert.equal(r.receiverMissing, 0);
  assert.equal(r.dlqBadRowsFound, r.badRows);
  assert.deepEqual(r.dlqUnexpected, []);
});
