import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { managedwriter } from '@google-cloud/bigquery-storage';
import { createWriterClient, type WriterClient } from '../../../src/sinks/warehouse/bigquery/storage-client.js';
import { protoDescriptor } from '../../../src/sinks/warehouse/bigquery/row-encoding.js';
import { COMMIT_LOG } from '../../../src/sinks/warehouse/bigquery/commit-log.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';
import {
  PROJECT,
  startedStorageSink,
  startStorageFakes,
  storageConfig,
  type StorageFakes,
} from './bigquery-storage-fixtures.js';

/**
 * The fake of the Storage Write API (test/helpers/fake-bigquery-storage.ts) keeps the semantics the
 * backend's exactly-once rests on — checked here through the real client library, so the fake
 * and the client agree on the wire: PENDING rows invisible until committed; offsets checked
 * (ALREADY_EXISTS below the end, OUT_OF_RANGE beyond it); a finalized stream refuses appends;
 * BatchCommitWriteStreams all or nothing.
 */

let fakes: StorageFakes;
let env: TestEnv;
let client: WriterClient;
const DATASET = 'fake_semantics';
const table = `projects/${PROJECT}/datasets/${DATASET}/tables/${COMMIT_LOG.name}`;

before(async () => {
  fakes = await startStorageFakes();
  env = await createTestEnv();
  const config = storageConfig(env.config, fakes, DATASET);
  await (await startedStorageSink(config)).close(); // makes the dataset and tables
  client = createWriterClient(config);
});

after(async () => {
  client.close();
  await env.cleanup();
  await fakes.close();
});

const row = (n: number) => ({
  topic: 't',
  kafka_partition: '0',
  next_offset: String(n),
  fact_rows: '0',
  writer: 'test',
  committed_at: '0',
});

type Connection = Awaited<ReturnType<WriterClient['createStreamConnection']>>;

async function pending(): Promise<{ name: string; writer: managedwriter.JSONWriter; conn: Connection }> {
  const conn = await client.createStreamConnection({
    streamType: managedwriter.PendingStream,
    destinationTable: table,
  });
  const writer = new managedwriter.JSONWriter({ connection: conn, protoDescriptor: protoDescriptor(COMMIT_LOG) });
  return { name: conn.getStreamId(), writer, conn };
}

const logged = () => fakes.rest.rows(DATASET, COMMIT_LOG.name).map((r) => Number(r.next_offset));

describe('fake Storage Write API', () => {
  it('keeps PENDING rows invisible until the stream is finalized and committed', async () => {
    const { name, writer, conn } = await pending();
    const res = await writer.appendRows([row(1), row(2)], 0).getResult();
    assert.equal(res.error ?? null, null);
    assert.equal(String(res.appendResult?.offset?.value), '0');
    assert.ok(!logged().includes(1), 'appended, not visible');
    const early = await client.batchCommitWriteStream({ parent: table, writeStreams: [name] });
    assert.deepEqual(
      early.streamErrors?.map((e) => e.code),
      ['INVALID_STREAM_STATE'],
      'an unfinalized stream cannot be committed (INVALID_STREAM_STATE)',
    );
    assert.equal(String((await conn.finalize())?.rowCount), '2');
    const committed = await client.batchCommitWriteStream({ parent: table, writeStreams: [name] });
    assert.ok(committed.commitTime && (committed.streamErrors ?? []).length === 0);
    assert.ok(logged().includes(1) && logged().includes(2), 'visible once committed');
    const again = await client.batchCommitWriteStream({ parent: table, writeStreams: [name] });
    assert.deepEqual(
      again.streamErrors?.map((e) => e.code),
      ['STREAM_ALREADY_COMMITTED'],
      'STREAM_ALREADY_COMMITTED, rows not added twice',
    );
    assert.equal(logged().filter((n) => n === 1).length, 1);
    assert.ok((await client.getWriteStream({ streamId: name })).commitTime, 'GetWriteStream shows the commit');
  });

  it('checks offsets: ALREADY_EXISTS below the end, OUT_OF_RANGE beyond it; a finalized stream refuses appends', async () => {
    const { writer, conn } = await pending();
    assert.equal((await writer.appendRows([row(10)], 0).getResult()).error ?? null, null);
    const dup = await writer.appendRows([row(11)], 0).getResult();
    assert.equal(dup.error?.code, 6, 'ALREADY_EXISTS');
    const gap = await writer.appendRows([row(12)], 5).getResult();
    assert.equal(gap.error?.code, 11, 'OUT_OF_RANGE');
    assert.equal(String((await conn.finalize())?.rowCount), '1', 'neither refused append was written');
    const conn2 = await client.createStreamConnection({ streamId: conn.getStreamId() });
    const writer2 = new managedwriter.JSONWriter({ connection: conn2, protoDescriptor: protoDescriptor(COMMIT_LOG) });
    const late = await writer2.appendRows([row(13)], 1).getResult();
    assert.equal(late.error?.code, 3, 'INVALID_ARGUMENT: the stream is finalized');
    conn2.close();
  });

  it('commits a batch of streams all or nothing', async () => {
    const a = await pending();
    await a.writer.appendRows([row(20)], 0).getResult();
    await a.conn.finalize();
    const b = await pending();
    await b.writer.appendRows([row(21)], 0).getResult(); // not finalized
    const res = await client.batchCommitWriteStream({ parent: table, writeStreams: [a.name, b.name] });
    assert.deepEqual(
      res.streamErrors?.map((e) => e.entity),
      [b.name],
    );
    assert.ok(!logged().includes(20), 'the good stream was not committed either');
    b.conn.close();
  });

  it('refuses a row that misses a REQUIRED column, naming it in row_errors', async () => {
    const { writer, conn } = await pending();
    const res = await writer.appendRows([row(30), { topic: 't' }], 0).getResult();
    assert.equal(res.error?.code, 3);
    assert.deepEqual(
      res.rowErrors?.map((e) => String(e.index)),
      ['1'],
    );
    conn.close();
  });
});
