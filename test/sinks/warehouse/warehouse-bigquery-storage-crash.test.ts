import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { SinkBatch } from '../../../src/core/sink-contract.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';
import { enrichedEvent } from '../../helpers/sink-harness.js';
import type { StorageMethod } from '../../helpers/fake-bigquery-storage.js';
import {
  loggedOffset,
  startedStorageSink,
  startStorageFakes,
  storageConfig,
  storedIds,
  type StorageFakes,
} from './bigquery-storage-fixtures.js';
import { batchOf } from './warehouse-fixtures.js';

/**
 * Exactly once across a crash at every step of the Storage Write API protocol
 * (src/sinks/warehouse/bigquery/storage-protocol.ts): a sink PROCESS writes a batch and is
 * SIGKILLed just before one of its calls reaches the fake (the call is then never served), or
 * after its last; a new sink — as a restarted process would — reads the stored offset and writes
 * what is left. Every event must then be stored exactly once, and the offset be the batch's end.
 */

const TOPIC = 'crash-topic';
const CHILD = fileURLToPath(new URL('./fixtures/storage-writer-process.ts', import.meta.url));
/** The calls of one flush of a fresh process, in order. */
const PROTOCOL: StorageMethod[] = [
  'CreateWriteStream', // the PENDING fact stream
  'AppendRows', // its rows
  'FinalizeWriteStream',
  'CreateWriteStream', // the partition's COMMITTED commit-log stream
  'AppendRows', // the decision
  'BatchCommitWriteStreams', // the fact stream
];

let fakes: StorageFakes;
let env: TestEnv;

before(async () => {
  fakes = await startStorageFakes();
  env = await createTestEnv();
});

after(async () => {
  fakes.storage.beforeCall = null;
  await env.cleanup();
  await fakes.close();
});

/** Runs the writer process, killing it before call number `killAt` (none: it finishes). */
async function runWriter(dataset: string, batch: SinkBatch, killAt: number | null): Promise<string[]> {
  const seen: string[] = [];
  let child: ChildProcess | null = null;
  fakes.storage.beforeCall = async (call) => {
    seen.push(call.method);
    if (killAt !== null && seen.length - 1 >= killAt) {
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
      throw new Error('the writer was killed');
    }
  };
  child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...env.env, ...fakes.env, BIGQUERY_DATASET_ID: dataset, ENGAGE_TEST_BATCH: JSON.stringify(batch) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  fakes.storage.beforeCall = null;
  if (killAt === null) assert.equal(out.trim(), 'done', `the writer finished (exit ${code})`);
  else assert.equal(signal, 'SIGKILL', `the writer was killed before ${PROTOCOL[killAt]}`);
  return seen;
}

describe('bigquery storage warehouse: a crash at each step of the protocol', () => {
  const points: Array<number | null> = [...PROTOCOL.keys(), null];
  for (const killAt of points) {
    const what = killAt === null ? 'after the commit' : `before call ${killAt + 1} (${PROTOCOL[killAt]})`;
    it(`killed ${what}: after a restart every event is stored exactly once`, { timeout: 60000 }, async () => {
      const dataset = `crash_${killAt ?? 'end'}`;
      const config = storageConfig(env.config, fakes, dataset);
      const batch = batchOf(
        TOPIC,
        0,
        Array.from({ length: 20 }, (_, i) => enrichedEvent({ event_id: String(1000 + i) })),
        0,
      );
      await (await startedStorageSink(config)).close(); // the schema, as a previous run left it
      const seen = await runWriter(dataset, batch, killAt);
      if (killAt === null) assert.deepEqual(seen, PROTOCOL, 'the protocol is these calls, in this order');
      else assert.deepEqual(seen.slice(0, killAt), PROTOCOL.slice(0, killAt));

      const restarted = await startedStorageSink(config);
      const stored = (await restarted.storedOffsets(TOPIC, [0])).get(0);
      const decided = killAt === null || killAt >= PROTOCOL.length - 1;
      assert.equal(stored, decided ? '20' : undefined, 'the offset is stored once the decision is');
      const rest = batch.records.filter((r) => BigInt(r.offset) >= BigInt(stored ?? '0'));
      await restarted.write({ ...batch, records: rest });
      const health = await restarted.health();
      await restarted.close();

      const want = Array.from({ length: 20 }, (_, i) => 1000 + i);
      assert.deepEqual(storedIds(fakes, dataset), want, 'each event once');
      assert.equal(loggedOffset(fakes, dataset, 0), 20n);
      assert.equal(
        (health.detail as { rolledForward: number }).rolledForward,
        killAt === PROTOCOL.length - 1 ? 1 : 0,
        'only a decided, uncommitted flush is committed at restart',
      );
    });
  }
});
