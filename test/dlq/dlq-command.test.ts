import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { PipelineError } from '../../src/core/errors.js';
import type { DlqEntry } from '../../src/core/types.js';
import { formatListing, listDlq } from '../../src/dlq/list.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { produce } from '../helpers/sink-harness.js';

/** The `engage dlq` commands as a user runs them (a child process on the real stack). */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let env: TestEnv;

before(async () => {
  env = await createTestEnv();
  await ensureTopics(env.config);
});
after(async () => {
  await env.cleanup();
});

function childEnv(): Record<string, string> {
  const c = env.config;
  return {
    KAFKA_BOOTSTRAP_SERVERS: c.kafkaBrokers.join(','),
    KAFKA_TOPIC_DLQ: c.KAFKA_TOPIC_DLQ,
    KAFKA_TOPIC_ENRICHED: c.KAFKA_TOPIC_ENRICHED,
    KAFKA_TOPIC_ENGAGEMENT_EVENTS: c.KAFKA_TOPIC_ENGAGEMENT_EVENTS,
    KAFKA_TOPIC_CONTENT: c.KAFKA_TOPIC_CONTENT,
    KAFKA_TOPIC_CDC_POSITION: c.KAFKA_TOPIC_CDC_POSITION,
    KAFKA_TOPIC_PARTITIONS: String(c.KAFKA_TOPIC_PARTITIONS),
    KAFKA_CLIENT_ID: c.KAFKA_CLIENT_ID,
    REDIS_KEY_PREFIX: c.REDIS_KEY_PREFIX,
    DATABASE_URL: c.databaseUrl,
    LOG_LEVEL: 'error',
  };
}

/**
 * Runs the CLI in this process (this test file's own process: its environment is ours to set).
 * Only stderr is captured: stdout carries the test runner's own report.
 */
async function inProcess(
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  Object.assign(process.env, childEnv(), extraEnv);
  let stderr = '';
  const err = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => (
    (stderr += String(chunk)),
    true
  )) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stderr };
  } finally {
    process.stderr.write = err;
    process.exitCode = undefined;
  }
}

function engage(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'bin/engage.mjs'), ...args], {
      cwd: root,
      env: { ...process.env, ...childEnv() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 45000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('dlq list prints entries and counts, as text and as JSON lines', { timeout: 90000 }, async () => {
  const entry = (i: number, stage: string): DlqEntry => ({
    reason: `reason ${i}`,
    code: 'HTTP_REJECTED',
    stage,
    topic: 'some.enriched',
    partition: 1,
    offset: String(100 + i),
    key: null,
    value_base64: Buffer.from(`{"event_id":"${i}"}`).toString('base64'),
    failed_at: '2025-01-01T00:00:00.000Z',
    attempts: 8,
  });
  await produce(
    env.config,
    env.config.KAFKA_TOPIC_DLQ,
    [0, 1, 2].map((i) => ({ key: null, value: JSON.stringify(entry(i, i === 1 ? 'processor' : 'sink:external')) })),
  );
  const json = await engage(['dlq', 'list', '--stage', 'sink:external', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const lines = json.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as DlqEntry & { dlq_offset: string });
  assert.deepEqual(
    lines.map((l) => [l.stage, l.offset, l.dlq_offset]),
    [
      ['sink:external', '100', '0'],
      ['sink:external', '102', '2'],
    ],
  );
  assert.deepEqual(
    lines.map((l) => (l as unknown as { replay: string }).replay),
    ['to replay', 'to replay'],
  );
  const text = formatListing(await listDlq(env.config, { limit: 1 }));
  assert.match(text, /some\.enriched\/1@102/);
  assert.match(text, /value=\{"event_id":"2"\}/);
  assert.match(
    text,
    /3 matching of 3 DLQ entries \(showing the newest 1\); by stage: sink:external=2 \(2 to replay\) processor=1 \(1 to replay\)/,
  );
  assert.match(text, /sink:external +to replay +HTTP_REJECTED/);
});

test('usage errors exit 2', { timeout: 60000 }, async () => {
  const bogus = await inProcess(['dlq', 'replay', '--stage', 'bogus']);
  assert.equal(bogus.code, 2);
  assert.match(bogus.stderr, /cannot replay stage "bogus"/);
  const limit = await inProcess(['dlq', 'list', '--limit', '0']);
  assert.equal(limit.code, 2);
  assert.match(limit.stderr, /accepts a whole number/);
  const missing = await inProcess(['dlq', 'replay']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--stage/);
  // A typo in list's --stage is refused like replay's, not shown as an empty stage.
  const stage = await inProcess(['dlq', 'list', '--stage', 'nonsense']);
  assert.deepEqual(
    [stage.code, stage.stderr],
    [2, 'engage: USAGE: no DLQ stage "nonsense": use processor, sink:<name> or backfill\n'],
  );
  for (const cmd of ['list', 'replay']) {
    const sink = await inProcess(['dlq', cmd, '--stage', 'sink:reddis']);
    assert.equal(sink.code, 2, cmd);
    assert.match(sink.stderr, /^engage: USAGE: unknown sink "reddis"; known: .*redis/, cmd);
  }
  assert.equal(
    (await listDlq(env.config, { stage: 'backfill' })).matched,
    0,
    'backfill is a stage list shows (not one replay takes)',
  );
});

test(
  'an unreachable Kafka is a SERVICE_UNREACHABLE naming its address, not a librdkafka trace',
  { timeout: 30000 },
  async () => {
    const unreachable = { ...env.config, kafkaBrokers: ['127.0.0.1:1'] };
    const [list, replay] = await Promise.all([
      listDlq(unreachable).then(
        () => undefined,
        (err: unknown) => err,
      ),
      inProcess(['dlq', 'replay', '--stage', 'processor', '--dry-run'], {
        KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:1',
        LOG_LEVEL: 'silent',
      }),
    ]);
    assert.ok(list instanceof PipelineError, String(list));
    assert.equal(list.code, 'SERVICE_UNREACHABLE');
    assert.match(list.message, /^Kafka at 127\.0\.0\.1:1 did not answer: .*KAFKA_SECURITY_PROTOCOL/);
    assert.equal(replay.code, 1);
    assert.match(replay.stderr, /^engage: SERVICE_UNREACHABLE: Kafka at 127\.0\.0\.1:1 did not answer: /m);
    assert.doesNotMatch(replay.stderr, /createLibrdkafkaError|\n\s+at /);
  },
);
