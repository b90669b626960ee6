import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pgoutput } from 'pg-logical-replication';
import { ChangePipeline } from '../../src/cdc/change-pipeline.js';
import { parsePosition, type CdcPosition } from '../../src/cdc/position-store.js';
import type { TxnWriter } from '../../src/cdc/txn-writer.js';
import type { OutMessage } from '../../src/cdc/envelope.js';
import { parseLsn } from '../../src/cdc/lsn.js';
import { waitFor } from '../helpers/wait.js';
import { pipelineOptions } from './pipeline-options.js';

/**
 * A PostgreSQL transaction larger than `splitRows` is written across several Kafka transactions
 * (change-pipeline.ts), each position saying how far into it Kafka got; a session resuming from
 * such a position after a crash skips exactly that many changes of the transaction, which
 * PostgreSQL sends again whole, so every change is in Kafka once. The writer here records each
 * commit's records; the real stack runs the same path in test/e2e (a 3,000,000-row transaction
 * SIGKILLed in the middle).
 */

const TABLE = 'public.t';
const TOPIC = 'cdc.t';

const relation = {
  tag: 'relation',
  relationOid: 42,
  schema: 'public',
  name: 't',
  replicaIdentity: 'default',
  columns: [{ name: 'id', typeOid: 23, flags: 1, typeMod: -1, typeSchema: null, typeName: null, parser: String }],
  keyColumns: ['id'],
} as unknown as Pgoutput.MessageRelation;

interface Committed {
  ids: number[];
  position: CdcPosition | null;
}

/** A pipeline whose writer records what each Kafka commit held; commits complete at once. */
function pipelineOf(splitRows: number, resumeFrom: CdcPosition | null, acked: bigint[], commits: Committed[]) {
  let current: number[] = [];
  const writer = {
    full: false,
    get size() {
      return current.length;
    },
    add: (_topic: string, _key: string | null, value: string | null) => {
      if (value !== null) current.push((JSON.parse(value) as { after: { id: number } }).after.id);
    },
    room: () => Promise.resolve(),
    abort: () => Promise.resolve(),
    commit: (last: readonly OutMessage[]) => {
      const value = last[0]?.value;
      commits.push({ ids: current, position: parsePosition(value ? Buffer.from(value) : null) });
      current = [];
      return Promise.resolve();
    },
  } as unknown as TxnWriter;
  return new ChangePipeline(
    pipelineOptions(writer, (lsn) => acked.push(lsn), {
      routes: { [TABLE]: TOPIC },
      splitRows,
      commitIntervalMs: 50,
      skipBelow: resumeFrom ? parseLsn(resumeFrom.lsn) : 0n,
      resumeFrom,
    }),
  );
}

/** Feeds one transaction of `rows` inserts (ids 1…rows), committed in PostgreSQL at `lsnBase`. */
async function feed(p: ChangePipeline, rows: number, lsnBase: number, stopAfter = rows): Promise<void> {
  const lsn = (n: number) => `0/${n.toString(16).toUpperCase()}`;
  const commitTime = BigInt(Date.now() - 60_000) * 1000n; // a backlog: batches wait for their bounds
  await p.handle(lsn(lsnBase), relation);
  p.handle(lsn(lsnBase), {
    tag: 'begin',
    commitLsn: lsn(lsnBase + 1000 + rows),
    commitTime,
    xid: 7,
  } as Pgoutput.MessageBegin);
  for (let i = 1; i <= stopAfter; i++)
    await p.handle(lsn(lsnBase + i), { tag: 'insert', relation, new: [String(i)] } as unknown as Parameters<
      ChangePipeline['handle']
    >[1]);
  if (stopAfter < rows) return;
  p.handle(lsn(lsnBase + 1000 + rows), {
    tag: 'commit',
    flags: 0,
    commitLsn: lsn(lsnBase + 1000 + rows),
    commitEndLsn: lsn(lsnBase + 1000 + rows + 8),
    commitTime,
  } as Pgoutput.MessageCommit);
}

test('a transaction over splitRows goes in several Kafka transactions, each position saying how far', async () => {
  const acked: bigint[] = [];
  const commits: Committed[] = [];
  const p = pipelineOf(100, null, acked, commits);
  await feed(p, 350, 0x1000);
  await waitFor('the transaction committed whole', () => commits.some((c) => c.position?.partial === null));
  await p.drain();
  assert.deepEqual(
    commits.map((c) => c.position?.partial?.changes ?? 'end'),
    [100, 200, 300, 'end'],
    'three parts inside the transaction, then its end',
  );
  assert.deepEqual(
    commits.flatMap((c) => c.ids),
    Array.from({ length: 350 }, (_, i) => i + 1),
    'every change once, in order',
  );
  assert.equal(acked.length, 1, 'PostgreSQL hears of the transaction once, when it is whole in Kafka');
  assert.equal(commits[0]?.position?.lsn, '0/0', 'a part keeps the last complete position');
});

test('after a crash inside a split transaction, the resumed session writes only the rest of it', async () => {
  const first: Committed[] = [];
  const crashed = pipelineOf(100, null, [], first);
  await feed(crashed, 350, 0x1000, 250); // the process dies after 250 changes: two parts are in Kafka
  await waitFor('two parts committed', () => first.length === 2);
  const lastPart = first[first.length - 1]?.position ?? null;
  assert.equal(lastPart?.partial?.changes, 200);

  const acked: bigint[] = [];
  const second: Committed[] = [];
  const resumed = pipelineOf(100, lastPart, acked, second);
  await feed(resumed, 350, 0x1000); // PostgreSQL sends the transaction again, whole
  await waitFor('the transaction completed', () => second.some((c) => c.position?.partial === null));
  await resumed.drain();
  const ids = [...first, ...second].flatMap((c) => c.ids);
  assert.deepEqual(
    ids,
    Array.from({ length: 350 }, (_, i) => i + 1),
    'every change exactly once across the crash',
  );
  assert.equal(acked.length, 1);
});
