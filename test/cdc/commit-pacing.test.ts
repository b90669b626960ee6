import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pgoutput } from 'pg-logical-replication';
import { ChangePipeline } from '../../src/cdc/change-pipeline.js';
import type { TxnWriter } from '../../src/cdc/txn-writer.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { pipelineOptions } from './pipeline-options.js';

/**
 * The CDC's commit pacing (change-pipeline.ts, runtime/commit-pacer.ts): a live stream (its
 * transactions committed in PostgreSQL just now) is committed to Kafka as soon as the previous
 * commit allows, transactions arriving during a commit share the next one, and that one starts
 * no sooner than the previous commit's cost after it ended; a backlog (old transactions) fills
 * its batch up to CDC_COMMIT_INTERVAL_MS. The writer here only records and holds commits.
 */

interface Harness {
  pipeline: ChangePipeline;
  /** Commits asked of the writer, in order: when each started and the LSN acked after it. */
  commits: Array<{ startedAt: number; endedAt?: number }>;
  acked: bigint[];
  /** Ends the commit in flight (each commit waits for this). */
  release(): void;
  txn(i: number, commitTimeMs: number): void;
}

function harness(commitIntervalMs: number): Harness {
  const commits: Harness['commits'] = [];
  const acked: bigint[] = [];
  let releaseCurrent: (() => void) | undefined;
  const writer = {
    full: false,
    size: 0,
    add: () => undefined,
    room: () => Promise.resolve(),
    abort: () => Promise.resolve(),
    commit: () => {
      const c: { startedAt: number; endedAt?: number } = { startedAt: performance.now() };
      commits.push(c);
      return new Promise<void>((resolve) => {
        releaseCurrent = () => {
          c.endedAt = performance.now();
          resolve();
        };
      });
    },
  } as unknown as TxnWriter;
  const pipeline = new ChangePipeline(pipelineOptions(writer, (lsn) => acked.push(lsn), { commitIntervalMs }));
  const txn = (i: number, commitTimeMs: number) => {
    const lsn = `0/${(i * 0x100).toString(16)}`;
    const commitTime = BigInt(Math.round(commitTimeMs)) * 1000n;
    pipeline.handle(lsn, { tag: 'begin', commitLsn: lsn, commitTime, xid: i } as Pgoutput.MessageBegin);
    pipeline.handle(lsn, {
      tag: 'commit',
      flags: 0,
      commitLsn: lsn,
      commitEndLsn: `0/${(i * 0x100 + 8).toString(16)}`,
      commitTime,
    } as Pgoutput.MessageCommit);
  };
  return { pipeline, commits, acked, release: () => releaseCurrent?.(), txn };
}

const endLsn = (i: number) => BigInt(i * 0x100 + 8);

test('a live transaction is committed at once, those arriving meanwhile share the next commit, paced by its cost', async () => {
  // An interval of a minute: any commit seen below was started by the pacing, not by the interval.
  const h = harness(60_000);
  h.txn(1, Date.now());
  assert.equal(h.commits.length, 1, 'the first live transaction starts a commit at its COMMIT');

  for (let i = 2; i <= 10; i++) h.txn(i, Date.now());
  assert.equal(h.commits.length, 1, 'one commit in flight at a time');

  const COST_MS = 40;
  await sleep(COST_MS); // the commit's cost: the time it is held is what the pacer measures
  h.release();
  await waitFor('the first commit acked', () => h.acked.length === 1);
  assert.deepEqual(h.acked, [endLsn(1)]);

  await waitFor('the second commit, holding transactions 2–10', () => h.commits.length === 2, 5000);
  const [first, second] = h.commits;
  const gap = (second?.startedAt ?? 0) - (first?.endedAt ?? 0);
  // The pacer waits the smoothed cost (ratio 1): at least the cost held above, less timer slack.
  assert.ok(gap >= COST_MS * 0.8, `the second commit started ${gap.toFixed(1)} ms after the first ended`);
  h.release();
  await waitFor('the second commit acked', () => h.acked.length === 2);
  assert.deepEqual(h.acked, [endLsn(1), endLsn(10)], 'transactions 2–10 went in one Kafka commit');
  await h.pipeline.drain();
  assert.equal(h.commits.length, 2);
});

test('a backlog (transactions committed long ago) fills its batch up to CDC_COMMIT_INTERVAL_MS', async () => {
  const INTERVAL_MS = 400;
  const h = harness(INTERVAL_MS);
  const t0 = performance.now();
  for (let i = 1; i <= 5; i++) h.txn(i, Date.now() - 60_000);
  await sleep(INTERVAL_MS / 4); // what is asserted: nothing is committed before the interval
  assert.equal(h.commits.length, 0, 'no commit before the batch is CDC_COMMIT_INTERVAL_MS old');
  await waitFor('the backlog batch committed by its age', () => h.commits.length === 1, 5000);
  assert.ok((h.commits[0]?.startedAt ?? 0) - t0 >= INTERVAL_MS * 0.9, 'not before the interval');
  h.release();
  await waitFor('the batch acked', () => h.acked.length === 1);
  assert.deepEqual(h.acked, [endLsn(5)], 'the five transactions in one commit');
  await h.pipeline.drain();
});
