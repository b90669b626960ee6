import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StallWatch } from '../../src/runtime/stall-watch.js';

const lane = (nextOffset: string, lag: number, busy = false) => ({ partition: 0, nextOffset, lag, busy });

test('a partition with lag, nothing in flight and no progress is reported once, after the delay', () => {
  let t = 0;
  const w = new StallWatch(30_000, () => t);
  assert.deepEqual(w.check([lane('10', 5)]), []);
  t = 29_999;
  assert.deepEqual(w.check([lane('10', 5)]), []);
  t = 30_000;
  const out = w.check([lane('10', 5)]);
  assert.equal(out.length, 1);
  assert.equal(out[0]?.stalledMs, 30_000);
  t = 90_000;
  assert.deepEqual(w.check([lane('10', 5)]), [], 'reported once per stall');
  t = 95_000;
  assert.deepEqual(w.check([lane('11', 4)]), [], 'progress resets it');
  t = 125_000;
  assert.equal(w.check([lane('11', 4)]).length, 1, 'a new stall is reported again');
});

test('no lag, or a batch in flight (retrying), is not a stall', () => {
  let t = 0;
  const w = new StallWatch(1_000, () => t);
  w.check([lane('10', 0)]);
  t = 5_000;
  assert.deepEqual(w.check([lane('10', 0)]), []);
  w.check([lane('10', 3, true)]);
  t = 10_000;
  assert.deepEqual(w.check([lane('10', 3, true)]), []);
  t = 10_500;
  assert.deepEqual(w.check([lane('10', 3)]), [], 'the clock restarts when the batch ends');
  t = 11_500;
  assert.equal(w.check([lane('10', 3)]).length, 1);
});

test('a partition given up is forgotten', () => {
  let t = 0;
  const w = new StallWatch(1_000, () => t);
  w.check([lane('10', 3)]);
  t = 500;
  w.check([]);
  t = 1_200;
  assert.deepEqual(w.check([lane('10', 3)]), [], 'its clock starts again on re-assignment');
});
