import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import type { GroupConsumer, PartitionOffset, TxnProducer } from '../../src/kafka/txn-producer.js';
import { processorMetrics } from '../../src/processor/metrics.js';
import { TransactionWriter } from '../../src/processor/transaction-writer.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * The processor's transaction pacing (transaction-writer.ts, runtime/commit-pacer.ts): a batch
 * submitted to an idle writer commits at once; batches submitted while a transaction is in flight
 * share the next one, which starts about the previous one's cost after it ended (never later than
 * `maxGapMs`), or at once when `fullAt` records wait. Each batch's records and offsets still commit
 * together. The producer here only records and holds commits: the transactional path itself runs
 * against the real broker in processor.test.ts and scale-out.test.ts.
 */

interface Commit {
  records: number;
  offsets: PartitionOffset[];
  startedAt: number;
  endedAt?: number;
}

function holdingProducer(commits: Commit[], holdMs: number): TxnProducer {
  let records = 0;
  let offsets: PartitionOffset[] = [];
  const producer = {
    begin: () => Promise.resolve(),
    produce: () => {
      records++;
    },
    sendOffsets: (o: PartitionOffset[]) => {
      offsets = o;
      return Promise.resolve();
    },
    commit: async () => {
      const c: Commit = { records, offsets, startedAt: performance.now() };
      commits.push(c);
      records = 0;
      offsets = [];
      await sleep(holdMs); // the commit's cost, as the pacer sees it
      c.endedAt = performance.now();
    },
    abort: () => Promise.resolve(),
  };
  return producer as unknown as TxnProducer;
}

function writerWith(commits: Commit[], holdMs: number, pacing: { ratio: number; maxGapMs: number; fullAt: number }) {
  return new TransactionWriter(
    holdingProducer(commits, holdMs),
    {} as GroupConsumer,
    createLogger('warn', 'commit-pacing-test'),
    processorMetrics(),
    (err) => assert.fail(String(err)),
    pacing,
  );
}

const batch = (i: number, size = 1) => ({
  records: Array.from({ length: size }, (_, j) => ({ topic: 'out', key: 'k', value: `{"i":${i},"j":${j}}` })),
  offsets: [{ topic: 'in', partition: i % 3, offset: 100 + i }],
});

test('an idle writer commits a batch at once; batches arriving during a transaction share the next, paced by its cost', async () => {
  const commits: Commit[] = [];
  const HOLD_MS = 40;
  const writer = writerWith(commits, HOLD_MS, { ratio: 1, maxGapMs: 10_000, fullAt: 1000 });
  const submitted = [writer.submit(batch(0))];
  await waitFor('the first transaction started', () => commits.length === 1, 5000);
  for (let i = 1; i < 10; i++) submitted.push(writer.submit(batch(i)));
  await Promise.all(submitted);
  await writer.close();

  assert.deepEqual(
    commits.map((c) => c.records),
    [1, 9],
    'the first batch alone, the nine submitted during its transaction together',
  );
  assert.deepEqual(
    commits[1]?.offsets.map((o) => `${o.partition}@${o.offset}`).sort(),
    ['0@109', '1@107', '2@108'],
    'the shared transaction carries each partition its highest offset',
  );
  const gap = (commits[1]?.startedAt ?? 0) - (commits[0]?.endedAt ?? 0);
  assert.ok(gap >= HOLD_MS * 0.8, `the second transaction started ${gap.toFixed(1)} ms after the first ended`);
  assert.ok(gap < 10_000, 'and well before the upper bound');
});

test('the wait never exceeds maxGapMs, and a queue reaching fullAt commits without waiting', async () => {
  const capped: Commit[] = [];
  const writer = writerWith(capped, 200, { ratio: 10, maxGapMs: 20, fullAt: 1000 });
  await Promise.all([writer.submit(batch(0)), sleep(5).then(() => writer.submit(batch(1)))]);
  await writer.close();
  const gap = (capped[1]?.startedAt ?? 0) - (capped[0]?.endedAt ?? 0);
  // ratio 10 × 200 ms would be 2 s: the bound is 20 ms (the margin is for a loaded machine).
  assert.ok(gap < 1000, `the second transaction started ${gap.toFixed(1)} ms after the first ended`);

  const full: Commit[] = [];
  // Paced alone, the second transaction would wait 1000 × 20 ms = 20 s.
  const eager = writerWith(full, 20, { ratio: 1000, maxGapMs: 60_000, fullAt: 3 });
  const all = [eager.submit(batch(0, 2))];
  await waitFor('the first transaction started', () => full.length === 1, 5000);
  for (let i = 1; i < 10; i++) all.push(eager.submit(batch(i, 2)));
  await Promise.all(all);
  await eager.close();
  assert.equal(
    full.reduce((n, c) => n + c.records, 0),
    20,
    'every record in exactly one transaction',
  );
  for (let i = 1; i < full.length; i++) {
    const wait = (full[i]?.startedAt ?? 0) - (full[i - 1]?.endedAt ?? 0);
    assert.ok(wait < 10_000, `transaction ${i + 1} waited ${wait.toFixed(0)} ms with ${'≥'} fullAt records queued`);
  }
});
