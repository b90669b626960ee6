import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RdKafka } from '@confluentinc/kafka-javascript';
import { FetchBuffers } from '../../src/kafka/fetch-buffers.js';

/**
 * The BatchConsumer's per-partition bookkeeping (src/kafka/fetch-buffers.ts), pure: order and
 * no duplicates across refetches, one running batch per partition, pause/resume, rewind after a
 * failed batch, and nothing handed over once revoked.
 */

const TOPIC = 'events';

function msg(partition: number, offset: number, topic = TOPIC): RdKafka.Message {
  return { topic, partition, offset, key: null, value: Buffer.from(`${partition}:${offset}`), size: 3, timestamp: 0 };
}

function buffers(maxBatch: number) {
  const calls: string[] = [];
  const l = new FetchBuffers(TOPIC, maxBatch, {
    pause: (p) => calls.push(`pause ${p}`),
    resume: (p) => calls.push(`resume ${p}`),
  });
  return { l, calls };
}

/** Takes the next ready batch and marks it running (as the consumer does). */
function start(l: FetchBuffers): { partition: number; offsets: number[]; finish(rewind: boolean): void } | undefined {
  const buffer = l.nextReady();
  if (!buffer) return undefined;
  const batch = l.take(buffer);
  buffer.running = Promise.resolve();
  return {
    partition: buffer.partition,
    offsets: batch.map((m) => m.offset),
    finish: (rewind) => l.finish(buffer, rewind ? (batch[0]?.offset ?? null) : null),
  };
}

describe('FetchBuffers', () => {
  it('hands over batches of at most maxBatch, in offset order, one running batch per partition', () => {
    const { l } = buffers(3);
    l.open(0);
    for (let o = 10; o < 15; o++) l.add(msg(0, o));
    const a = start(l);
    assert.deepEqual(a?.offsets, [10, 11, 12]);
    assert.equal(start(l), undefined, 'the partition has a running batch');
    a?.finish(false);
    assert.deepEqual(start(l)?.offsets, [13, 14]);
  });

  it('drops a refetched offset it already holds or handed over, and messages of unknown partitions or topics', () => {
    const { l } = buffers(10);
    l.open(0);
    l.add(msg(0, 5));
    l.add(msg(0, 6));
    l.add(msg(0, 5));
    l.add(msg(1, 1));
    l.add(msg(0, 9, 'other'));
    l.add(msg(0, 8));
    assert.deepEqual(start(l)?.offsets, [5, 6, 8]);
  });

  it('pauses a partition holding a full batch and resumes it once the batch is taken', () => {
    const { l, calls } = buffers(2);
    l.open(0);
    l.add(msg(0, 0));
    assert.deepEqual(calls, []);
    l.add(msg(0, 1));
    assert.deepEqual(calls, ['pause 0']);
    start(l);
    assert.deepEqual(calls, ['pause 0', 'resume 0']);
  });

  it('after a failed batch: drops what it holds until rewound, then accepts from the batch start again', () => {
    const { l } = buffers(2);
    l.open(0);
    for (let o = 0; o < 4; o++) l.add(msg(0, o));
    const a = start(l);
    assert.deepEqual(a?.offsets, [0, 1]);
    a?.finish(true);
    assert.deepEqual(
      l.rewinding().map((buffer) => [buffer.partition, buffer.rewindTo]),
      [[0, 0]],
    );
    l.add(msg(0, 4));
    assert.equal(start(l), undefined, 'nothing is handed over before the seek');
    const [buffer] = l.rewinding();
    if (buffer) l.rewound(buffer);
    for (let o = 0; o < 3; o++) l.add(msg(0, o));
    assert.deepEqual(start(l)?.offsets, [0, 1]);
  });

  it('hands nothing over for revoked partitions and settles their running batches', async () => {
    const { l } = buffers(5);
    l.open(0);
    l.open(1);
    l.add(msg(0, 0));
    l.add(msg(1, 0));
    const a = start(l);
    l.close([0, 1]);
    l.add(msg(0, 1));
    assert.equal(start(l), undefined);
    a?.finish(true);
    assert.deepEqual(l.rewinding(), [], 'a revoked partition is not rewound: its next owner re-reads it');
    await l.settled([0, 1]);
    assert.equal(l.running, 0);
  });

  it('keeps a partition paused while the owner holds it, whatever its own backpressure wants', () => {
    const { l, calls } = buffers(2);
    l.open(0);
    l.hold(0, true);
    assert.deepEqual(calls, ['pause 0']);
    l.add(msg(0, 0));
    l.add(msg(0, 1));
    start(l);
    assert.deepEqual(calls, ['pause 0'], 'taking the full batch does not resume a held partition');
    l.hold(0, false);
    assert.deepEqual(calls, ['pause 0', 'resume 0']);
  });

  it("an owner's reposition drops what the buffer holds and accepts from that offset once seeked", () => {
    const { l } = buffers(5);
    l.open(0);
    for (let o = 10; o < 13; o++) l.add(msg(0, o));
    l.reposition(0, 4);
    l.add(msg(0, 13));
    assert.equal(start(l), undefined, 'nothing is handed over before the seek');
    const [buffer] = l.rewinding();
    assert.equal(buffer?.rewindTo, 4);
    if (buffer) l.rewound(buffer);
    for (let o = 4; o < 6; o++) l.add(msg(0, o));
    assert.deepEqual(start(l)?.offsets, [4, 5]);
  });
});
