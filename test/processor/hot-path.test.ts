import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RdKafka } from '@confluentinc/kafka-javascript';
import { PartitionLanes } from '../../src/kafka/partition-lanes.js';
import { ValueArena } from '../../src/kafka/value-arena.js';
import { TimeSlicer } from '../../src/runtime/time-slice.js';

/**
 * The pieces the processor's throughput work added (docs/processor.md "Where the time goes"):
 * values encoded off the heap, cooperative time slices, and the lanes' buffered count that bounds
 * consumption without pausing partitions.
 */

describe('ValueArena', () => {
  it('returns the UTF-8 bytes of each value, still intact after the arena moved to new chunks', () => {
    const arena = new ValueArena(64);
    const texts = ['{"a":1}', 'é€😀 multi-byte', 'x'.repeat(100), '', '{"b":"ü"}', 'y'.repeat(30), 'z'.repeat(30)];
    const views = texts.map((t) => arena.put(t));
    views.forEach((v, i) => assert.equal(v.toString('utf8'), texts[i]));
    views.forEach((v, i) => assert.equal(v.length, Buffer.byteLength(texts[i] as string)));
  });

  it('never hands out overlapping bytes', () => {
    const arena = new ValueArena(256);
    const views = Array.from({ length: 200 }, (_, i) => arena.put(`value-${i}`));
    views[0]?.fill(0x21);
    views.slice(1).forEach((v, i) => assert.equal(v.toString(), `value-${i + 1}`));
  });
});

describe('TimeSlicer', () => {
  it('is due only on a check iteration once the slice has run its time, and a pause starts a new slice', async () => {
    const slicer = new TimeSlicer(5);
    assert.equal(slicer.due(63), false, 'the slice has just started');
    const until = performance.now() + 8;
    while (performance.now() < until) {
      // spin past the slice
    }
    assert.equal(slicer.due(62), false, 'not a check iteration');
    assert.equal(slicer.due(63), true);
    let ranMeanwhile = false;
    setImmediate(() => (ranMeanwhile = true));
    await slicer.pause();
    assert.equal(ranMeanwhile, true, 'callbacks queued before the pause ran during it');
    assert.equal(slicer.due(127), false, 'a new slice started');
  });
});

describe('PartitionLanes.buffered', () => {
  const msg = (partition: number, offset: number): RdKafka.Message => ({ topic: 't', partition, offset, key: null, value: Buffer.from('v'), size: 1, timestamp: 0 });

  it('counts what the lanes hold and not what was handed over or dropped', () => {
    const lanes = new PartitionLanes('t', 2, { pause: () => undefined, resume: () => undefined }, 10);
    lanes.open(0);
    lanes.open(1);
    for (let o = 0; o < 3; o++) lanes.add(msg(0, o));
    for (let o = 0; o < 4; o++) lanes.add(msg(1, o));
    assert.equal(lanes.buffered(), 7);
    const lane = lanes.nextReady();
    assert.equal(lane?.partition, 0);
    assert.equal(lanes.take(lane).length, 2);
    assert.equal(lanes.buffered(), 5);
    lanes.close([1]);
    assert.equal(lanes.buffered(), 1, 'partition 1 revoked: what it held is dropped');
  });

  it('hasReady: messages held by a partition whose batch is running are not ready work', () => {
    const lanes = new PartitionLanes('t', 2, { pause: () => undefined, resume: () => undefined }, 10);
    lanes.open(0);
    assert.equal(lanes.hasReady(), false, 'nothing held');
    for (let o = 0; o < 5; o++) lanes.add(msg(0, o));
    assert.equal(lanes.hasReady(), true);
    const lane = lanes.nextReady();
    assert.ok(lane);
    lanes.take(lane);
    lane.running = Promise.resolve();
    assert.equal(lanes.buffered(), 3);
    assert.equal(lanes.hasReady(), false, 'the only partition with messages is running a batch');
    lanes.finish(lane, null);
    assert.equal(lanes.hasReady(), true);
  });
});
