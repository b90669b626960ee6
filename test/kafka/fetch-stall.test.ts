import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FetchStallWatch, type PartitionFetch } from '../../src/kafka/fetch-stall.js';

/** The fetch-stall decision (src/kafka/fetch-stall.ts), pure, on a clock of its own. */

const part = (position: number | null, stableEnd: number | null, o: Partial<PartitionFetch> = {}): PartitionFetch => ({
  partition: 0,
  position,
  stableEnd,
  busy: false,
  fetchedAt: -20_000,
  ...o,
});

test('a partition with committed records past its position and nothing fetched is stalled after afterMs, once', () => {
  let t = 0;
  const w = new FetchStallWatch(60_000, () => t);
  assert.deepEqual(w.check([part(10, 15)]), []);
  t = 59_999;
  assert.deepEqual(w.check([part(10, 15)]), []);
  assert.deepEqual(w.stalled(), []);
  t = 60_000;
  const out = w.check([part(10, 15)]);
  assert.deepEqual(out, [{ partition: 0, position: 10, stableEnd: 15, stalledMs: 60_000, idleMs: 80_000 }]);
  assert.deepEqual(w.stalled(), out);
  t = 120_000;
  assert.deepEqual(w.check([part(10, 16)]), [], 'reported once per stall');
  assert.equal(w.stalled().length, 1, 'still stalled');
});

test('a busy partition (a batch running, messages held, paused) is no fetch stall', () => {
  let t = 0;
  const w = new FetchStallWatch(1_000, () => t);
  w.check([part(10, 15, { busy: true })]);
  t = 5_000;
  assert.deepEqual(w.check([part(10, 15, { busy: true })]), []);
  t = 5_500;
  assert.deepEqual(w.check([part(10, 15)]), [], 'the clock starts once it is not busy');
  t = 6_000;
  w.check([part(10, 15, { busy: true })]);
  t = 6_600;
  assert.deepEqual(w.check([part(10, 15)]), [], 'and starts again after each busy check');
  t = 7_600;
  assert.equal(w.check([part(10, 15)]).length, 1);
});

test('a stable end at most 1 past the position (the trailing transaction marker) is caught up', () => {
  let t = 0;
  const w = new FetchStallWatch(1_000, () => t);
  for (const [position, end] of [
    [10, 10],
    [10, 11],
    [10, 9],
  ] as const) {
    w.check([part(position, end)]);
    t += 5_000;
    assert.deepEqual(w.check([part(position, end)]), [], `position ${position}, stable end ${end}`);
  }
  w.check([part(10, 12)]);
  t += 1_000;
  assert.equal(w.check([part(10, 12)]).length, 1, '2 past it is records not fetched');
});

test('unknown figures are no evidence: the clock starts again', () => {
  let t = 0;
  const w = new FetchStallWatch(1_000, () => t);
  w.check([part(10, 15)]);
  t = 900;
  w.check([part(null, 15)]);
  t = 1_500;
  assert.deepEqual(w.check([part(10, 15)]), []);
  t = 2_000;
  w.check([part(10, null)]);
  t = 2_600;
  assert.deepEqual(w.check([part(10, 15)]), []);
  t = 3_600;
  assert.equal(w.check([part(10, 15)]).length, 1);
});

test('a moved position or a message fetched resets it; a new stall is reported again', () => {
  let t = 0;
  const w = new FetchStallWatch(1_000, () => t);
  w.check([part(10, 15)]);
  t = 1_000;
  assert.equal(w.check([part(10, 15)]).length, 1);
  t = 1_500;
  assert.deepEqual(w.check([part(12, 15)]), [], 'moved');
  assert.deepEqual(w.stalled(), [], 'no longer stalled');
  t = 2_499;
  assert.deepEqual(w.check([part(12, 15)]), []);
  t = 2_500;
  assert.deepEqual(
    w.check([part(12, 15)]).map((s) => [s.position, s.stalledMs]),
    [[12, 1_000]],
    'a new stall at the new position',
  );
  t = 3_000;
  assert.deepEqual(w.check([part(12, 15, { fetchedAt: 2_900 })]), [], 'fetched (a rewind: same position)');
  assert.deepEqual(w.stalled(), []);
  t = 3_999;
  assert.deepEqual(w.check([part(12, 15, { fetchedAt: 2_900 })]), []);
  t = 4_000;
  assert.equal(w.check([part(12, 15, { fetchedAt: 2_900 })]).length, 1);
});

test('a partition revoked is forgotten; partitions are judged each on its own', () => {
  let t = 0;
  const w = new FetchStallWatch(1_000, () => t);
  w.check([part(10, 15), part(20, 30, { partition: 1 })]);
  t = 500;
  w.check([part(20, 30, { partition: 1 })]);
  t = 1_000;
  assert.deepEqual(
    w.check([part(10, 15), part(20, 30, { partition: 1 })]).map((s) => s.partition),
    [1],
    'partition 0 was revoked in between: its clock starts again on re-assignment',
  );
  t = 2_000;
  assert.deepEqual(
    w.check([part(10, 15), part(20, 30, { partition: 1 })]).map((s) => s.partition),
    [0],
  );
  assert.deepEqual(
    w.stalled().map((s) => s.partition),
    [0, 1],
  );
  w.check([]);
  assert.deepEqual(w.stalled(), [], 'all revoked');
});
