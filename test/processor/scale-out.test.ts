import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ContentRow, EnrichedEvent } from '../../src/core/types.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import { processorGroupId } from '../../src/processor/processor.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  InputWriter,
  contentMsg,
  eventMsg,
  parseValues,
  readTopic,
  waitForGroupCaughtUp,
  waitForSettled,
} from './kafka-helpers.js';

/**
 * Scale-out and exactly-once under a crash: three `engage process --mode stream` processes share the
 * six partitions of one group; one is SIGKILLed while events stream in. Its open transaction is
 * aborted by the broker, its partitions move to the others, and the enriched topic (read_committed)
 * ends with every event exactly once. The survivors then stop cleanly on SIGTERM.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const EVENTS = 6000;
const PER_TXN = 100;

interface Child {
  proc: ChildProcess;
  stderr: string;
  exited: Promise<number | null>;
}

function startChild(env: NodeJS.ProcessEnv): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'process', '--mode', 'stream'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const child: Child = { proc, stderr: '', exited: new Promise((resolve) => proc.on('exit', (code) => resolve(code))) };
  proc.stderr?.on('data', (d: Buffer) => {
    child.stderr += d.toString();
  });
  return child;
}

/** Resolves to 'timeout' after `ms` without keeping the process alive. */
function timeout(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
}

describe('processor scale-out: three instances, one SIGKILLed mid-stream', { timeout: 150000 }, () => {
  let env: TestEnv;
  let input: InputWriter;
  const children: Child[] = [];

  before(async () => {
    env = await createTestEnv({
      KAFKA_TOPIC_PARTITIONS: '6',
      PROCESSOR_SESSION_TIMEOUT_MS: '6000',
      PROCESSOR_TRANSACTION_TIMEOUT_MS: '5000',
      PROCESSOR_MAX_BATCH: '200',
      CONTENT_WAIT_MS: '2000',
      LOG_LEVEL: 'info',
    });
    await ensureTopics(env.config);
    input = await InputWriter.open(env.config);
  });

  after(async () => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await input?.close();
    await env?.cleanup();
  });

  it('holds each event exactly once in the enriched topic', async () => {
    const c = env.config;
    const contents: ContentRow[] = Array.from({ length: 10 }, (_, i) => ({
      id: `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`,
      slug: `s-${i}`,
      title: `T ${i}`,
      content_type: 'podcast',
      length_seconds: 100 + i,
      publish_ts: '2025-01-01T00:00:00Z',
    }));
    await input.txn(contents.map((row) => contentMsg(c, row)));

    for (let i = 0; i < 3; i++) children.push(startChild(env.env));
    // Each has logged a non-empty assignment: the group has settled with partitions on every member.
    await waitFor(
      'three processors with partitions',
      () => children.every((ch) => ch.stderr.includes('processor partitions assigned')),
      90000,
    );
    const victim = children[1] as Child;

    let killedAt = -1;
    for (let sent = 0; sent < EVENTS; sent += PER_TXN) {
      await input.txn(
        Array.from({ length: PER_TXN }, (_, k) =>
          eventMsg(c, {
            id: String(sent + k + 1),
            content_id: contents[(sent + k) % contents.length]?.id ?? null,
            duration_ms: 1000 * k,
          }),
        ),
      );
      if (killedAt < 0 && sent >= EVENTS / 3 && victim.stderr.includes('processor partitions assigned')) {
        victim.proc.kill('SIGKILL');
        killedAt = sent;
      }
      await sleep(15); // the input's pacing: the stream is still flowing when the victim is killed
    }
    assert.ok(killedAt > 0, 'the victim had partitions and was killed mid-stream');
    assert.equal(await victim.exited, null, 'killed by a signal');

    await waitForGroupCaughtUp(c, processorGroupId(c), c.KAFKA_TOPIC_ENGAGEMENT_EVENTS, 60000);
    // The victim's open transaction (if any) is aborted by the broker; only then is all committed output readable.
    await waitForSettled(c, c.KAFKA_TOPIC_ENRICHED, 40000);
    const events = parseValues<EnrichedEvent>(await readTopic(c.kafkaBrokers, c.KAFKA_TOPIC_ENRICHED, 30000));
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e.event_id, (counts.get(e.event_id) ?? 0) + 1);
    const dupes = [...counts].filter(([, n]) => n > 1);
    const missing = Array.from({ length: EVENTS }, (_, i) => String(i + 1)).filter((id) => !counts.has(id));
    assert.deepEqual(dupes.slice(0, 10), [], `no duplicates (${dupes.length} found)`);
    assert.deepEqual(missing.slice(0, 10), [], `none missing (${missing.length} missing)`);
    assert.equal(events.length, EVENTS);

    const survivors = children.filter((ch) => ch !== victim);
    for (const s of survivors) s.proc.kill('SIGTERM');
    const codes = await Promise.all(survivors.map((s) => Promise.race([s.exited, timeout(30000)])));
    assert.deepEqual(codes, [0, 0], 'survivors drain and exit 0 on SIGTERM');
  });
});
