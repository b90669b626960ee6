import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RdKafka } from '@confluentinc/kafka-javascript';
import { FetchBuffers } from '../../src/kafka/fetch-buffers.js';
import { ValueArena } from '../../src/kafka/value-arena.js';
import { TimeSlicer } from '../../src/runtime/time-slice.js';

/**
 * The pieces the processor's throughput work added (docs/processor.md "Where the time goes"):
 * values encoded off the heap, cooperative time slices, and the buffers' buffered count that bounds
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
    // A clock of its own: a loaded machine must not decide whether 5 ms have passed.
    let t = 1000;
    const slicer = new TimeSlicer(5, () => t);
    assert.equal(slicer.due(63), false, 'the slice has just started');
    t += 8;
    assert.equal(slicer.due(62), false, 'not a check iteration');
    assert.equal(slicer.due(63), true);
    let ranMeanwhile = false;
    setImmediate(() => (ranMeanwhile = true));
    await slicer.pause();
    assert.equal(ranMeanwhile, true, 'callbacks queued before the pause ran during it');
    assert.equal(slicer.due(127), false, 'a new slice started');
  });
});

describe('FetchBuffers.buffered', () => {
  const msg = (partition: number, offset: number): RdKafka.Message => ({
    topic: 't',
    partition,
    offset,
    key: null,
    value: Buffer.from('v'),
    size: 1,
    timestamp: 0,
  });

  it('counts what the buffers hold and not what was handed over or dropped', () => {
    const buffers = new FetchBuffers('t', 2, { pause: () => undefined, resume: () => undefined }, 10);
    buffers.open(0);
    buffers.open(1);
    for (let o = 0; o < 3; o++) buffers.add(msg(0, o));
    for (let o = 0; o < 4; o++) buffers.add(msg(1, o));
    assert.equal(buffers.buffered(), 7);
    const buffer = buffers.nextReady();
    assert.equal(buffer?.partition, 0);
    assert.equal(buffers.take(buffer).length, 2);
    assert.equal(buffers.buffered(), 5);
    buffers.close([1]);
    assert.equal(buffers.buffered(), 1, 'partition 1 revoked: what it held is dropped');
  });

  it('hasReady: messages held by a partition whose batch is running are not ready work', () => {
    const buffers = new FetchBuffers('t', 2, { pause: () => undefined, resume: () => undefined }, 10);
    buffers.open(0);
    assert.equal(buffers.hasReady(), false, 'nothing held');
    for (let o = 0; o < 5; o++) buffers.add(msg(0, o));
    assert.equal(buffers.hasReady(), true);
    const buffer = buffers.nextReady();
    assert.ok(buffer);
    buffers.take(buffer);
    buffer.running = Promise.resolve();
    assert.equal(buffers.buffered(), 3);
    assert.equal(buffers.hasReady(), false, 'the only partition with messages is running a batch');
    buffers.finish(buffer, null);
    assert.equal(buffers.hasReady(), true);
  });
});
