import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  WatermarkWindow,
  visibleTo,
  xid32,
  type SnapshotVisibility,
} from '../../src/cdc/incremental-snapshot/watermark-window.js';

/** The DBLog watermark window of src/cdc/incremental-snapshot/watermark-window.ts, without I/O. */

const k = (id: number) => JSON.stringify({ id: String(id) });
const rows = (...ids: number[]) => ids.map((id) => ({ key: k(id), after: `{"id":"${id}"}` }));
const snap = (xmin: number, xmax: number, xip: number[] = []): SnapshotVisibility => ({
  xmin,
  xmax,
  xip: new Set(xip),
});

function txn(w: WatermarkWindow, xid: number, ...ids: number[]): void {
  w.begin(xid);
  for (const id of ids) w.touch(k(id));
  w.end();
}

test('rows changed inside the window are dropped (the stream wins), the rest kept in order', () => {
  const w = new WatermarkWindow();
  txn(w, 100, 1); // before L, seen by the chunk's snapshot: the chunk's row is newer or equal
  w.low();
  txn(w, 101, 3, 4); // inside the window: dropped whether the snapshot saw it or not
  txn(w, 102, 99); // a key outside the chunk: nothing to drop
  const out = w.high(rows(1, 2, 3, 4, 5), snap(101, 103));
  assert.deepEqual(
    out?.kept.map((r) => r.key),
    [k(1), k(2), k(5)],
  );
  assert.equal(out?.dropped, 2);
});

test('a transaction before L that the snapshot did not see drops its rows, and stays for the next chunk', () => {
  const w = new WatermarkWindow();
  txn(w, 200, 7); // streamed before L, but still in progress for the snapshot (visible later)
  w.low();
  let out = w.high(rows(6, 7, 8), snap(200, 205, [200]));
  assert.deepEqual(
    out?.kept.map((r) => r.key),
    [k(6), k(8)],
  );
  assert.equal(w.recordedTransactions, 1, 'kept: the next snapshot may not see it either');
  w.low();
  out = w.high(rows(7, 9), snap(200, 206, [200]));
  assert.deepEqual(
    out?.kept.map((r) => r.key),
    [k(9)],
  );
  w.low();
  out = w.high(rows(7, 10), snap(206, 207)); // now seen: the chunk's row 7 is newer than the stream's
  assert.deepEqual(
    out?.kept.map((r) => r.key),
    [k(7), k(10)],
  );
  assert.equal(w.recordedTransactions, 0);
});

test('transactions after H belong to the next chunk: the window starts over at each high watermark', () => {
  const w = new WatermarkWindow();
  w.low();
  txn(w, 300, 1);
  assert.deepEqual(
    w.high(rows(1, 2), snap(301, 301))?.kept.map((r) => r.key),
    [k(2)],
  );
  txn(w, 302, 2); // after H (seen by the next snapshot): not in the next chunk's window
  w.low();
  assert.deepEqual(
    w.high(rows(1, 2, 3), snap(303, 303))?.kept.map((r) => r.key),
    [k(1), k(2), k(3)],
  );
});

test('a high watermark without its low one returns null (the chunk is read again)', () => {
  const w = new WatermarkWindow();
  txn(w, 1, 1);
  assert.equal(w.high(rows(1), snap(2, 2)), null);
});

test('xid visibility: in-progress list, xmax bound, wrap-around', () => {
  const s = snap(10, 20, [12]);
  assert.equal(visibleTo(s, 9), true);
  assert.equal(visibleTo(s, 12), false);
  assert.equal(visibleTo(s, 15), true);
  assert.equal(visibleTo(s, 20), false);
  const wrapped = snap(0xfffffff0, 5);
  assert.equal(visibleTo(wrapped, 0xfffffff5), true);
  assert.equal(visibleTo(wrapped, 3), true);
  assert.equal(visibleTo(wrapped, 6), false);
  assert.equal(xid32(String((3n << 32n) + 42n)), 42);
});
