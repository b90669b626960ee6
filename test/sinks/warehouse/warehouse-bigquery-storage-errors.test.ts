import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { grpc } from 'google-gax';
import type { Config } from '../../../src/config/load.js';
import { classifyStorageError } from '../../../src/sinks/warehouse/bigquery/storage-client.js';
import { StorageWarehouse } from '../../../src/sinks/warehouse/bigquery/storage-warehouse.js';
import { warehouseSinkFactory } from '../../../src/sinks/warehouse/index.js';
import { ensureTopics } from '../../../src/kafka/admin.js';
import { startSinkRunner } from '../../../src/runtime/sink-runner.js';
import type { SinkFactory } from '../../../src/core/sink-contract.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';
import { enrichedEvent, eventMessages, produce, readDlq, waitCaughtUp } from '../../helpers/sink-harness.js';
import {
  loggedOffset,
  startStorageFakes,
  storageConfig,
  storedIds,
  type StorageFakes,
} from './bigquery-storage-fixtures.js';
import { ctxOf, log } from './warehouse-fixtures.js';

/**
 * The Storage Write API backend's failures through the real runtime (src/runtime/write-splitting.ts):
 * a retriable gRPC status (UNAVAILABLE) waits and every record is then stored once; the service
 * refusing one row (INVALID_ARGUMENT with row_errors) parks that record alone, with the API's
 * reason. And the factory: chosen by default when BIGQUERY_PROJECT_ID is set, batches by bytes.
 */

let fakes: StorageFakes;
let env: TestEnv;

before(async () => {
  fakes = await startStorageFakes();
  env = await createTestEnv();
  await ensureTopics(env.config);
});

after(async () => {
  fakes.storage.refuseRow = null;
  await env.cleanup();
  await fakes.close();
});

/** Runs the sink through the runtime over what the topic holds, until every partition is settled. */
async function runOnce(config: Config): Promise<StorageWarehouse> {
  const sink = new StorageWarehouse(ctxOf(config));
  const factory: SinkFactory = {
    name: sink.name,
    create: () => sink,
    retryPolicy: () => ({ attempts: Number.MAX_SAFE_INTEGER, baseMs: 20, maxMs: 200, jitter: 'full' }),
  };
  const runner = await startSinkRunner(config, factory, log, { batching: { maxRecords: 50, maxWaitMs: 100 } });
  runner.done.catch(() => undefined);
  try {
    await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED, 30000);
  } finally {
    await runner.stop();
  }
  return sink;
}

describe('bigquery storage warehouse: failures through the runtime', () => {
  it('waits out UNAVAILABLE, then stores every record once', { timeout: 60000 }, async () => {
    const dataset = `errors_wait_${env.id}`;
    const config = storageConfig(env.config, fakes, dataset);
    const events = Array.from({ length: 30 }, (_, i) => enrichedEvent({ event_id: String(5000 + i) }));
    await produce(config, config.KAFKA_TOPIC_ENRICHED, eventMessages(events, 0));
    const before = fakes.storage.calls.length;
    fakes.storage.fail('CreateWriteStream', { code: grpc.status.UNAVAILABLE, times: 3 });
    await runOnce(config);
    const refused = fakes.storage.calls.slice(before).filter((c) => c.method === 'CreateWriteStream');
    assert.ok(refused.length >= 4, 'the refused calls were tried again');
    assert.deepEqual(
      storedIds(fakes, dataset),
      events.map((e) => Number(e.event_id)),
    );
    assert.equal(loggedOffset(fakes, dataset, 0), 30n);
    assert.equal((await readDlq(config)).length, 0, 'nothing parked for an outage');
  });

  it('parks only the row the service refuses, with its reason', { timeout: 60000 }, async () => {
    // Partition 1 of the same topic (its own dataset; partition 0's records are written there too).
    const dataset = `errors_refused_${env.id}`;
    const config = storageConfig(env.config, fakes, dataset);
    const events = Array.from({ length: 10 }, (_, i) => enrichedEvent({ event_id: String(7000 + i) }));
    await produce(config, config.KAFKA_TOPIC_ENRICHED, eventMessages(events, 1));
    fakes.storage.refuseRow = (row) => (row.event_id === '7004' ? 'Field device: value out of range' : null);
    try {
      await runOnce(config);
    } finally {
      fakes.storage.refuseRow = null;
    }
    assert.deepEqual(
      storedIds(fakes, dataset).filter((id) => id >= 7000),
      events.map((e) => Number(e.event_id)).filter((id) => id !== 7004),
    );
    const parked = (await readDlq(config)).filter((d) => d.partition === 1);
    assert.deepEqual(
      parked.map((d) => [d.offset, d.code]),
      [['4', 'SINK_REJECTED']],
    );
    assert.match(String(parked[0]?.reason), /value out of range/);
    assert.equal(loggedOffset(fakes, dataset, 1), 10n, 'the stored offset passes the parked record');
  });

  it('classifies gRPC statuses: transient and auth wait, a refused row is rejected, a lost table re-reads', () => {
    const code = (c: number) => classifyStorageError({ code: c, message: 'x' }, 'test');
    assert.deepEqual(
      [grpc.status.UNAVAILABLE, grpc.status.RESOURCE_EXHAUSTED, grpc.status.DEADLINE_EXCEEDED].map((c) => [
        code(c).code,
        code(c).retriable,
      ]),
      Array(3).fill(['SINK_WRITE_FAILED', true]),
    );
    assert.deepEqual(
      [code(grpc.status.PERMISSION_DENIED).code, code(grpc.status.PERMISSION_DENIED).retriable],
      ['SERVICE_MISCONFIGURED', true],
    );
    assert.deepEqual(
      [code(grpc.status.INVALID_ARGUMENT).code, code(grpc.status.INVALID_ARGUMENT).retriable],
      ['SINK_REJECTED', false],
    );
    assert.equal(code(grpc.status.NOT_FOUND).code, 'SINK_STATE_LOST');
  });
});

describe('bigquery storage warehouse: configuration', () => {
  it('is the default when BIGQUERY_PROJECT_ID is set, in batches sized by bytes, 8 partitions at once', () => {
    const config = storageConfig(env.config, fakes, 'cfg');
    assert.ok(warehouseSinkFactory.create(ctxOf(config)) instanceof StorageWarehouse);
    assert.deepEqual(
      warehouseSinkFactory.batching?.({ ...config, BATCH_SIZE: undefined, WAREHOUSE_FLUSH_SECONDS: undefined }),
      { maxRecords: 16_384, maxWaitMs: 10_000, paced: false },
      '≤ 8 MiB of rows at ≤ 512 B each, or 10 s',
    );
    assert.equal(warehouseSinkFactory.writeConcurrency?.(config), 8);
  });

  it('refuses a REST endpoint elsewhere without the Storage Write API endpoint (no write goes to Google by mistake)', () => {
    const config = { ...storageConfig(env.config, fakes, 'cfg'), BIGQUERY_STORAGE_API_ENDPOINT: undefined };
    assert.throws(() => new StorageWarehouse(ctxOf(config)), { code: 'CONFIG_INVALID' });
  });
});
