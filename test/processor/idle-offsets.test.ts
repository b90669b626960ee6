import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdleOffsets } from '../../src/processor/idle-offsets.js';

/**
 * The idle-marker commit's rules with a hand-driven clock: nothing until a partition has been
 * idle for the whole delay, nothing when the position is already committed, one commit in flight
 * per partition, a failed commit retried, a batch in between restarting the delay.
 */

function harness(afterMs = 1000) {
  let now = 0;
  const calls: Array<[number, number]> = [];
  const results: Array<{ resolve(): void; reject(err: unknown): void }> = [];
  const idle = new IdleOffsets(
    (p, o) => {
      calls.push([p, o]);
      return new Promise<void>((resolve, reject) => results.push({ resolve, reject }));
    },
    afterMs,
    () => now,
  );
  return { idle, calls, results, advance: (ms: number) => (now += ms) };
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('IdleOffsets', () => {
  it('commits the position past a marker once the partition has been idle for the delay', async () => {
    const h = harness();
    h.idle.committed(0, 10);
    h.idle.idle(0, 11);
    h.advance(999);
    h.idle.idle(0, 11);
    assert.deepEqual(h.calls, [], 'not before the delay');
    h.advance(1);
    h.idle.idle(0, 11);
    h.idle.idle(0, 11);
    assert.deepEqual(h.calls, [[0, 11]], 'one commit, none while it is in flight');
    h.results[0]?.resolve();
    await flush();
    h.advance(5000);
    h.idle.idle(0, 11);
    assert.equal(h.calls.length, 1, 'a committed position is not committed again');
  });

  it('does nothing when the position is what the last batch committed', () => {
    const h = harness();
    h.idle.committed(2, 40);
    h.idle.idle(2, 40);
    h.advance(2000);
    h.idle.idle(2, 40);
    assert.deepEqual(h.calls, []);
  });

  it('a batch in between restarts the delay (steady traffic adds no transaction)', () => {
    const h = harness();
    h.idle.committed(1, 5);
    for (let i = 0; i < 10; i++) {
      h.idle.idle(1, 6 + i * 3);
      h.advance(400);
      h.idle.idle(1, 6 + i * 3);
      h.idle.busy(1);
      h.idle.committed(1, 8 + i * 3);
      h.advance(400);
    }
    assert.deepEqual(h.calls, []);
  });

  it('retries a failed commit at a later idle report; commits once after an assignment', async () => {
    const h = harness();
    h.idle.idle(3, 7);
    h.advance(1000);
    h.idle.idle(3, 7);
    assert.deepEqual(h.calls, [[3, 7]], 'an unknown committed offset (just assigned) is committed once');
    h.results[0]?.reject(new Error('aborted'));
    await flush();
    h.idle.idle(3, 7);
    assert.deepEqual(
      h.calls,
      [
        [3, 7],
        [3, 7],
      ],
      'retried after the failure',
    );
    h.results[1]?.resolve();
    await flush();
    h.idle.forget([3]);
    h.idle.idle(3, 7);
    h.advance(1000);
    h.idle.idle(3, 7);
    assert.equal(h.calls.length, 3, 'forgotten on reassignment: committed once more');
  });
});
