import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import type { GroupConsumer, PartitionOffset, TxnProducer } from '../../src/kafka/txn-producer.js';
import { processorMetrics } from '../../src/processor/metrics.js';
import { TransactionWriter } from '../../src/processor/transaction-writer.js';

/**
 * PROCESSOR_MIN_COMMIT_GAP_MS: batches submitted while the gap since the last commit has not
 * passed wait and share the next transaction (each batch's records and offsets still commit
 * together). The producer here only records what the writer asks of it: the transactional path
 * itself runs against the real broker in processor.test.ts and scale-out.test.ts.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Recorded {
  commits: Array<{ records: number; offsets: PartitionOffset[] }>;
}

function recordingProducer(rec: Recorded): TxnProducer {
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
      await sleep(1);
      rec.commits.push({ records, offsets });
      records = 0;
      offsets = [];
    },
    abort: () => Promise.resolve(),
  };
  return producer as unknown as TxnProducer;
}

async function run(minCommitGapMs: number, fullAt = 1000, batch = 1): Promise<Recorded> {
  const rec: Recorded = { commits: [] };
  const writer = new TransactionWriter(
    recordingProducer(rec),
    {} as GroupConsumer,
    createLogger('warn', 'commit-gap-test'),
    processorMetrics(),
    (err) => assert.fail(String(err)),
    { minCommitGapMs, fullAt },
  );
  const submitted: Promise<void>[] = [];
  for (let i = 0; i < 10; i++) {
    const partition = i % 3;
    submitted.push(
      writer.submit({
        records: Array.from({ length: batch }, (_, j) => ({ topic: 'out', key: 'k', value: `{"i":${i},"j":${j}}` })),
        offsets: [{ topic: 'in', partition, offset: 100 + i }],
      }),
    );
    await sleep(10);
  }
  await Promise.all(submitted);
  await writer.close();
  return rec;
}

test('without a gap each batch submitted alone commits alone; with one, batches arriving within it share a transaction', async () => {
  const free = await run(0);
  assert.ok(
    free.commits.length >= 5,
    `gap 0: ${free.commits.length} transactions for 10 batches submitted 10 ms apart`,
  );

  const spaced = await run(1000);
  assert.equal(
    spaced.commits.length,
    2,
    'gap 1 s: the first batch at once, the nine submitted within the gap together',
  );
  assert.deepEqual(
    spaced.commits.map((c) => c.records),
    [1, 9],
    'every record in exactly one transaction',
  );
  const last = spaced.commits[1]?.offsets.map((o) => `${o.partition}@${o.offset}`).sort();
  assert.deepEqual(
    last,
    ['0@109', '1@107', '2@108'],
    'the shared transaction carries each partition its highest offset',
  );

  const full = await run(1000, 3, 2);
  assert.ok(
    full.commits.length >= 4,
    `a queue reaching fullAt commits without waiting out the gap: ${full.commits.length} transactions`,
  );
  assert.equal(
    full.commits.reduce((n, c) => n + c.records, 0),
    20,
    'every record in exactly one transaction',
  );
});
