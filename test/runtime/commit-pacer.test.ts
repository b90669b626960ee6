import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommitPacer } from '../../src/runtime/commit-pacer.js';

/** CommitPacer on a clock of its own: the wait after a commit follows the (smoothed) cost, bounded. */

function clocked(ratio: number, maxGapMs: number) {
  let t = 1000;
  const pacer = new CommitPacer({ ratio, maxGapMs }, () => t);
  const commit = (costMs: number) => {
    const s = pacer.started();
    t += costMs;
    pacer.ended(s);
  };
  return { pacer, commit, advance: (ms: number) => (t += ms) };
}

test('before any commit there is no wait; after one, the wait is ratio × its cost, counting down', () => {
  const { pacer, commit, advance } = clocked(1, 1000);
  assert.equal(pacer.waitMs(), 0);
  commit(8);
  assert.equal(pacer.waitMs(), 8);
  advance(5);
  assert.equal(pacer.waitMs(), 3);
  advance(5);
  assert.equal(pacer.waitMs(), 0);
});

test('the cost is smoothed: one slow commit moves the wait a quarter of the way', () => {
  const { pacer, commit } = clocked(2, 10_000);
  commit(10);
  commit(10);
  commit(90);
  assert.equal(pacer.smoothedCostMs, 30);
  assert.equal(pacer.waitMs(), 60);
});

test('maxGapMs bounds the wait, and ratio 0 turns pacing off', () => {
  const bounded = clocked(10, 50);
  bounded.commit(100);
  assert.equal(bounded.pacer.waitMs(), 50);
  const off = clocked(0, 50);
  off.commit(100);
  assert.equal(off.pacer.waitMs(), 0);
  assert.throws(() => new CommitPacer({ ratio: -1, maxGapMs: 0 }), RangeError);
});
