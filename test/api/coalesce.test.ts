import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Coalescer } from '../../src/api/content/coalesce.js';
import { sleep } from '../helpers/wait.js';

/** The /top-content coalescer: shared in-flight work, reuse within the TTL, failures not kept. */

describe('Coalescer', () => {
  it('runs one computation for concurrent callers of a key and reuses it within the TTL', async () => {
    let now = 0;
    let calls = 0;
    const c = new Coalescer<number>(100, 10, () => now);
    const compute = async () => {
      calls += 1;
      await sleep(5); // a computation that takes time, so the three callers overlap
      return calls;
    };
    assert.deepEqual(await Promise.all([c.get('a', compute), c.get('a', compute), c.get('a', compute)]), [1, 1, 1]);
    now = 99;
    assert.equal(await c.get('a', compute), 1);
    assert.equal(await c.get('b', compute), 2, 'another key computes');
    now = 100;
    assert.equal(await c.get('a', compute), 3, 'expired after the TTL');
  });

  it('does not keep a failure, and never caches with a TTL of 0', async () => {
    const c = new Coalescer<string>(100);
    await assert.rejects(
      c.get('k', async () => Promise.reject(new Error('redis down'))),
      /redis down/,
    );
    assert.equal(await c.get('k', async () => 'ok'), 'ok');
    let n = 0;
    const none = new Coalescer<number>(0);
    assert.equal(await none.get('k', async () => ++n), 1);
    assert.equal(await none.get('k', async () => ++n), 2);
  });

  it('keeps at most maxKeys results', async () => {
    let n = 0;
    const c = new Coalescer<number>(1000, 2, () => 0);
    await c.get('a', async () => ++n);
    await c.get('b', async () => ++n);
    await c.get('c', async () => ++n); // evicts a, the oldest
    assert.equal(await c.get('b', async () => ++n), 2);
    assert.equal(await c.get('a', async () => ++n), 4);
  });
});
