import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pgoutput } from 'pg-logical-replication';
import { ChangePipeline } from '../../src/cdc/change-pipeline.js';
import type { TxnWriter } from '../../src/cdc/txn-writer.js';
import { createLogger } from '../../src/core/logger.js';

/**
 * CDC_MIN_COMMIT_GAP_MS: a quiet stream of small PostgreSQL transactions (each followed by a
 * pause, so each would be committed at once) is committed to Kafka at most once per gap.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function commitsFor(minCommitGapMs: number): Promise<{ commits: number; acked: number }> {
  let commits = 0;
  let acked = 0;
  const writer = {
    full: false,
    size: 0,
    add: () => undefined,
    room: () => Promise.resolve(),
    abort: () => Promise.resolve(),
    commit: () => {
      commits++;
      return sleep(1);
    },
  } as unknown as TxnWriter;
  const pipeline = new ChangePipeline({
    slot: 's',
    serverName: 'engage',
    db: 'db',
    positionTopic: 'p',
    routes: {},
    maxBatchRows: 1_000_000,
    commitIntervalMs: 60_000,
    minCommitGapMs,
    skipBelow: 0n,
    snapshot: null,
    writer,
    maxEventBytes: 1_000_000,
    onTruncated: () => undefined,
    primaryKey: () => Promise.resolve(['id']),
    ack: () => acked++,
    onCommitted: () => undefined,
    onFail: (err) => assert.fail(String(err)),
    log: createLogger('warn', 'commit-gap-test'),
  });
  for (let i = 1; i <= 10; i++) {
    const lsn = `0/${(i * 0x100).toString(16)}`;
    pipeline.handle(lsn, {
      tag: 'begin',
      commitLsn: lsn,
      commitTime: BigInt(Date.now()) * 1000n,
      xid: i,
    } as Pgoutput.MessageBegin);
    pipeline.handle(lsn, {
      tag: 'commit',
      flags: 0,
      commitLsn: lsn,
      commitEndLsn: `0/${(i * 0x100 + 8).toString(16)}`,
      commitTime: BigInt(Date.now()) * 1000n,
    } as Pgoutput.MessageCommit);
    await sleep(10); // longer than the 3 ms pause that marks the stream caught up
  }
  await sleep(50);
  const during = { commits, acked };
  await pipeline.drain();
  return during;
}

test('without a gap every paused transaction is its own Kafka commit; with one, the commits are spaced', async () => {
  const free = await commitsFor(0);
  assert.ok(free.commits >= 5, `gap 0: ${free.commits} commits for 10 paused transactions`);
  const spaced = await commitsFor(10_000);
  assert.equal(spaced.commits, 1, 'gap 10 s: only the first transaction is committed within the run');
  assert.equal(spaced.acked, 1, 'and only its position confirmed to PostgreSQL');
});
