import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import type { EnrichedEvent } from '../../src/core/types.js';
import { sinkGroupId } from '../../src/runtime/sink-runner-options.js';
import { startSinkRunner, type SinkRunner } from '../../src/runtime/sink-runner.js';
import type { Sink, SinkBatch } from '../../src/core/sink-contract.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { factoryFor } from '../helpers/memory-sink.js';
import {
  committedOffsets,
  deleteGroup,
  enrichedEvent,
  eventMessages,
  highWatermarks,
  produce,
  readDlq,
  waitCaughtUp,
} from '../helpers/sink-harness.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The contract every sink passes (src/core/sink-contract.ts), run against the real stack:
 * 1. the same batch delivered twice changes nothing (count, and the stored offset if any);
 * 2. a crash between the write and the offset commit loses nothing and counts nothing twice
 *    (a batch written directly then the sink re-created and fed by the runner; then the group's
 *    committed offsets deleted — every commit lost — and the runner run again);
 * 3. a poison record goes to the DLQ while the rest flows (through the runner, on a real topic);
 * 4. close drains: a pending batch is written when the runner stops.
 *
 * `makeSink(env)` returns a NEW, not yet started sink over the env's storage (Redis prefix, DuckDB
 * file, receiver…) each time it is called — the suite calls it several times per env to simulate
 * restarts; `count()` reads the stored records directly, whether the sink is open or closed;
 * `teardown()` releases what makeSink opened (not the sink: the suite or the runner closes it).
 */

export interface ContractSubject {
  sink: Sink;
  /** Records held by the sink's storage (a double count shows as a larger number). */
  count(): Promise<number>;
  teardown(): Promise<void>;
}

export type MakeSink = (env: TestEnv) => Promise<ContractSubject>;

export interface ContractOptions {
  /**
   * Turns a valid event into one this sink's `check` rejects (poison test; a rejection by `write`
   * would park its whole batch). Default: only undecodable bytes are tried.
   */
  poison?: (event: EnrichedEvent) => EnrichedEvent;
  /** Env overrides passed to createTestEnv (e.g. the receiver URL). */
  envOverrides?: Record<string, string>;
  /** The runner's concurrent writes, as the sink's factory sets them in production (default 1). */
  writeConcurrency?: number;
}

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'sink-contract');
const BATCHING = { maxRecords: 50, maxWaitMs: 100 };

async function withEnv(
  opts: ContractOptions,
  fn: (env: TestEnv, subjects: ContractSubject[]) => Promise<void>,
): Promise<void> {
  const env = await createTestEnv(opts.envOverrides);
  const subjects: ContractSubject[] = [];
  try {
    await ensureTopics(env.config);
    await fn(env, subjects);
  } finally {
    for (const s of subjects) await s.teardown().catch(() => undefined);
    await env.cleanup();
  }
}

async function open(makeSink: MakeSink, env: TestEnv, subjects: ContractSubject[]): Promise<ContractSubject> {
  const s = await makeSink(env);
  subjects.push(s);
  return s;
}

function batchOf(topic: string, partition: number, events: EnrichedEvent[], firstOffset: number): SinkBatch {
  return {
    topic,
    partition,
    records: events.map((event, i) => ({
      topic,
      partition,
      offset: String(firstOffset + i),
      key: event.content_id,
      event,
    })),
    nextOffset: String(firstOffset + events.length),
  };
}

async function runUntilCaughtUp(env: TestEnv, sink: Sink, writeConcurrency: number | undefined): Promise<SinkRunner> {
  const runner = await startSinkRunner(env.config, factoryFor(sink), log, { batching: BATCHING, writeConcurrency });
  runner.done.catch(() => undefined);
  try {
    await waitCaughtUp(runner, env.config, env.config.KAFKA_TOPIC_ENRICHED, 30000);
  } catch (err) {
    await runner.stop();
    throw err;
  }
  return runner;
}

export async function checkSameBatchTwice(makeSink: MakeSink, opts: ContractOptions = {}): Promise<void> {
  await withEnv(opts, async (env, subjects) => {
    const { sink, count } = await open(makeSink, env, subjects);
    const topic = env.config.KAFKA_TOPIC_ENRICHED;
    await sink.start();
    try {
      const before = await count();
      const batch = batchOf(
        topic,
        0,
        Array.from({ length: 10 }, () => enrichedEvent()),
        0,
      );
      await sink.write(batch);
      const once = await count();
      assert.equal(once - before, 10, 'the batch is stored');
      const storedOnce = await sink.storedOffsets(topic, [0]);
      if (storedOnce !== null) assert.equal(storedOnce.get(0), '10', 'the stored offset is nextOffset');
      await sink.write(batch);
      assert.equal(await count(), once, 'the same batch again changes no count');
      const storedTwice = await sink.storedOffsets(topic, [0]);
      assert.deepEqual(storedTwice, storedOnce, 'nor the stored offset');
    } finally {
      await sink.close();
    }
  });
}

export async function checkCrashBeforeCommit(makeSink: MakeSink, opts: ContractOptions = {}): Promise<void> {
  await withEnv(opts, async (env, subjects) => {
    const topic = env.config.KAFKA_TOPIC_ENRICHED;
    const p0 = Array.from({ length: 20 }, () => enrichedEvent());
    const p1 = Array.from({ length: 10 }, () => enrichedEvent());
    const a = await open(makeSink, env, subjects);
    await a.sink.start();
    const before = await a.count();
    await produce(env.config, topic, [...eventMessages(p0, 0), ...eventMessages(p1, 1)]);
    // The runner wrote the first half of partition 0, then died before committing.
    await a.sink.write(batchOf(topic, 0, p0.slice(0, 10), 0));
    await a.sink.close();
    const b = await open(makeSink, env, subjects);
    const runner = await runUntilCaughtUp(env, b.sink, opts.writeConcurrency);
    await runner.stop();
    assert.equal((await b.count()) - before, 30, 'after the restart every record is stored once');
    // Every commit lost (a crash of the runner before any commit): the group starts over.
    await deleteGroup(env.config, sinkGroupId(env.config, b.sink.name));
    const c = await open(makeSink, env, subjects);
    const again = await runUntilCaughtUp(env, c.sink, opts.writeConcurrency);
    await again.stop();
    assert.equal((await c.count()) - before, 30, 're-delivered records are not counted twice');
  });
}

export async function checkPoisonToDlq(makeSink: MakeSink, opts: ContractOptions = {}): Promise<void> {
  await withEnv(opts, async (env, subjects) => {
    const topic = env.config.KAFKA_TOPIC_ENRICHED;
    const s = await open(makeSink, env, subjects);
    const good = Array.from({ length: 10 }, () => enrichedEvent());
    const messages = [
      ...eventMessages(good.slice(0, 5), 0),
      { key: 'poison', value: Buffer.from('{"not json'), partition: 0 },
    ];
    if (opts.poison) messages.push(...eventMessages([opts.poison(enrichedEvent())], 0));
    messages.push(...eventMessages(good.slice(5), 0));
    await produce(env.config, topic, messages);
    const runner = await startSinkRunner(env.config, factoryFor(s.sink), log, {
      batching: BATCHING,
      writeConcurrency: opts.writeConcurrency,
    });
    runner.done.catch(() => undefined);
    try {
      await waitFor('the good records are stored', async () => (await s.count()) >= 10, 30000);
      await waitCaughtUp(runner, env.config, topic, 30000);
    } finally {
      await runner.stop();
    }
    assert.equal(await s.count(), 10, 'the rest flowed');
    const dlq = await readDlq(env.config);
    const stage = `sink:${s.sink.name}`;
    assert.equal(dlq.length, opts.poison ? 2 : 1, 'exactly the poison records are parked');
    assert.deepEqual(
      [dlq[0]?.stage, dlq[0]?.partition, dlq[0]?.offset, dlq[0]?.code],
      [stage, 0, '5', 'DECODE_FAILED'],
    );
    if (opts.poison) {
      assert.deepEqual([dlq[1]?.stage, dlq[1]?.partition, dlq[1]?.offset], [stage, 0, '6']);
      assert.ok(dlq[1]?.code && dlq[1].reason, 'the rejection carries a code and a reason');
    }
    assert.equal(
      Buffer.from(dlq[0]?.value_base64 ?? '', 'base64').toString('utf8'),
      '{"not json',
      'the original bytes are kept',
    );
    const committed = await committedOffsets(env.config, sinkGroupId(env.config, s.sink.name), topic);
    assert.equal(committed.get(0), String(messages.length), 'the offset advanced past the poison');
  });
}

export async function checkCloseDrains(makeSink: MakeSink, opts: ContractOptions = {}): Promise<void> {
  await withEnv(opts, async (env, subjects) => {
    const topic = env.config.KAFKA_TOPIC_ENRICHED;
    const s = await open(makeSink, env, subjects);
    const runner = await startSinkRunner(env.config, factoryFor(s.sink), log, {
      batching: { maxRecords: 1000, maxWaitMs: 10 * 60 * 1000 },
      writeConcurrency: opts.writeConcurrency,
    });
    runner.done.catch(() => undefined);
    let before = 0;
    try {
      before = await s.count();
      await produce(env.config, topic, eventMessages(Array.from({ length: 7 }, () => enrichedEvent())));
      await waitFor(
        '7 records are queued',
        () => runner.snapshot().partitions.reduce((n, p) => n + p.queued, 0) === 7,
        { timeoutMs: 30000, describe: () => runner.snapshot() },
      );
      assert.equal(await s.count(), before, 'nothing is written before the batch is due');
    } finally {
      await runner.stop();
    }
    assert.equal((await s.count()) - before, 7, 'stop wrote the pending batch');
    const hwm = await highWatermarks(env.config, topic);
    const committed = await committedOffsets(env.config, sinkGroupId(env.config, s.sink.name), topic);
    for (const [p, h] of hwm) if (h !== '0') assert.equal(committed.get(p), h, `partition ${p} committed on close`);
  });
}

/** Registers the four contract tests for one sink (call at the top level of a test file). */
export function sinkContractSuite(name: string, makeSink: MakeSink, opts: ContractOptions = {}): void {
  describe(`sink contract: ${name}`, () => {
    test('the same batch delivered twice changes nothing', { timeout: 60000 }, () =>
      checkSameBatchTwice(makeSink, opts),
    );
    test(
      'a crash between the write and the offset commit loses nothing and counts nothing twice',
      { timeout: 90000 },
      () => checkCrashBeforeCommit(makeSink, opts),
    );
    test('a poison record goes to the DLQ while the rest flows', { timeout: 60000 }, () =>
      checkPoisonToDlq(makeSink, opts),
    );
    test('close drains: a pending batch is written when the runner stops', { timeout: 60000 }, () =>
      checkCloseDrains(makeSink, opts),
    );
  });
}
