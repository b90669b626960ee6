import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { PartitionQueue } from '../../src/runtime/batcher.js';
import { MIN_QUEUED_PER_PARTITION, resolveBatching } from '../../src/runtime/sink-runner-options.js';
import type { SinkFactory } from '../../src/core/sink-contract.js';
import { Semaphore } from '../../src/runtime/semaphore.js';

/** Pure parts of the runtime: when a batch is due, backpressure thresholds, the write semaphore. */

function queue(maxRecords: number, maxWaitMs: number, maxQueued = maxRecords * 2) {
  let now = 1000;
  const q = new PartitionQueue<number>({ maxRecords, maxWaitMs, maxQueued }, () => now);
  return { q, advance: (ms: number) => (now += ms) };
}

test('a batch is due by size, by time, or when draining', () => {
  const { q, advance } = queue(3, 100);
  assert.equal(q.ready(), false);
  assert.equal(q.dueInMs(), undefined);
  q.push([1, 2]);
  assert.equal(q.ready(), false);
  assert.equal(q.dueInMs(), 100);
  assert.equal(q.ready(true), true, 'draining flushes a partial batch');
  advance(60);
  assert.equal(q.dueInMs(), 40);
  q.push([3]);
  assert.equal(q.ready(), true, 'full by size');
  assert.equal(q.dueInMs(), 0);
  assert.deepEqual(q.take(), [1, 2, 3]);
  assert.equal(q.size, 0);
  q.push([4]);
  assert.equal(q.ready(), false);
  advance(100);
  assert.equal(q.ready(), true, 'due by time');
  assert.deepEqual(q.take(), [4]);
});

test('take returns at most maxRecords in arrival order; leftovers keep their arrival time', () => {
  const { q, advance } = queue(2, 100, 10);
  q.push([1, 2, 3, 4, 5]);
  assert.deepEqual(q.take(), [1, 2]);
  assert.deepEqual(q.take(), [3, 4]);
  advance(100);
  assert.equal(q.ready(), true, 'the leftover is not held longer than maxWaitMs after it arrived');
  assert.deepEqual(q.take(), [5]);
  assert.deepEqual(q.take(), []);
});

test('full past maxQueued (pause), drained at one batch or less (resume)', () => {
  const { q } = queue(2, 100, 5);
  q.push([1, 2, 3, 4]);
  assert.equal(q.full(), false);
  q.push([5]);
  assert.equal(q.full(), true);
  assert.equal(q.drained(), false);
  q.take();
  q.take();
  assert.equal(q.drained(), true);
  q.clear();
  assert.equal(q.size, 0);
  assert.equal(q.dueInMs(), undefined);
});

test('the pause threshold: 2 × maxRecords, never below the look-ahead floor; an explicit one wins', () => {
  const config = loadConfig({}, '/nonexistent');
  const factory = (maxRecords: number): SinkFactory => ({
    name: 'probe',
    create: () => {
      throw new Error('not created here');
    },
    batching: () => ({ maxRecords, maxWaitMs: 100 }),
  });
  assert.equal(
    resolveBatching(config, factory(1000), {}).maxQueued,
    MIN_QUEUED_PER_PARTITION,
    'small batches queue the floor',
  );
  assert.equal(resolveBatching(config, factory(20_000), {}).maxQueued, 40_000, 'large batches queue two');
  assert.equal(
    resolveBatching(config, factory(1000), { maxQueuedPerPartition: 10 }).maxQueued,
    1000,
    'never below one batch',
  );
  assert.equal(resolveBatching(config, factory(1000), { maxQueuedPerPartition: 3000 }).maxQueued, 3000);
  const fromConfig = resolveBatching(
    loadConfig({ BATCH_SIZE: '100' }, '/nonexistent'),
    { name: 'plain', create: factory(1).create },
    {},
  );
  assert.deepEqual(
    [fromConfig.maxRecords, fromConfig.maxQueued],
    [100, MIN_QUEUED_PER_PARTITION],
    'BATCH_SIZE when the sink has no batching of its own',
  );
});

test('a paced queue is due once its pacer allows, and maxWaitMs stays the upper bound', () => {
  let t = 0;
  let paceWait = 30;
  const q = new PartitionQueue<number>(
    { maxRecords: 100, maxWaitMs: 50, maxQueued: 200, paced: true },
    () => t,
    () => paceWait,
  );
  q.push([1]);
  assert.equal(q.ready(), false, 'the pacer asks for 30 ms more');
  assert.equal(q.dueInMs(), 30, 'the sooner of the pacer and the age bound');
  paceWait = 0;
  assert.equal(q.ready(), true, 'due as soon as the pacer allows, whatever its age');
  paceWait = 500;
  assert.equal(q.dueInMs(), 50, 'never later than maxWaitMs');
  t = 50;
  assert.equal(q.ready(), true);
  const unpaced = new PartitionQueue<number>(
    { maxRecords: 100, maxWaitMs: 50, maxQueued: 200 },
    () => 0,
    () => 0,
  );
  unpaced.push([1]);
  assert.equal(unpaced.ready(), false, 'an unpaced queue waits for size or age');
});

test('invalid policies are refused', () => {
  assert.throws(() => new PartitionQueue({ maxRecords: 0, maxWaitMs: 1, maxQueued: 1 }), RangeError);
  assert.throws(() => new PartitionQueue({ maxRecords: 5, maxWaitMs: 1, maxQueued: 4 }), RangeError);
});

test('the semaphore runs at most N at once, in arrival order', async () => {
  const sem = new Semaphore(1);
  const order: string[] = [];
  let active = 0;
  let maxActive = 0;
  const job = (name: string) =>
    sem.run(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      order.push(`start ${name}`);
      await new Promise((r) => setImmediate(r));
      order.push(`end ${name}`);
      active--;
      return name;
    });
  const results = await Promise.all([job('a'), job('b'), job('c')]);
  assert.deepEqual(results, ['a', 'b', 'c']);
  assert.equal(maxActive, 1);
  assert.deepEqual(order, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  await assert.rejects(
    sem.run(async () => Promise.reject(new Error('boom'))),
    /boom/,
  );
  assert.equal(await sem.run(async () => 'after a failure'), 'after a failure', 'a failure releases the permit');
});
