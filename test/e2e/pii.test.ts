import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { createClient } from 'redis';
import { startCdc } from '../../src/cdc/cdc.js';
import { createLogger } from '../../src/core/logger.js';
import { isPseudonym, pseudonym } from '../../src/core/pseudonym.js';
import { createConsumer, createKafka } from '../../src/kafka/client.js';
import { startProcessor } from '../../src/processor/processor.js';
import { startReceiver, type RunningReceiver } from '../../src/receiver/index.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import { getSinkFactory } from '../../src/sinks/registry.js';
import { pgClient } from '../cdc/helpers.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';
import { queryWarehouse } from './sink-reads.js';

/**
 * The raw `user_id` found nowhere downstream (issue #31, docs/security.md): events of N known users
 * go through the real CDC, processor and the Redis, DuckDB and external sinks (in this process, on
 * the shared stack); then every record of every topic (raw bytes), every Redis key and value, every
 * DuckDB table's text and everything the receiver stored are scanned for the raw ids, hyphenated
 * and as 32 hex digits, while the distinct-user counts (DuckDB's views, Redis's HyperLogLogs) are N.
 */

const N = 7;
const EVENTS_PER_USER = 3;
const USERS = Array.from({ length: N }, () => randomUUID());
const CONTENT_ID = randomUUID();
const log = createLogger('warn', 'pii-e2e');
let env: TestEnv;
let db: pg.Client;
let receiver: RunningReceiver;
const dataFile = path.join(os.tmpdir(), `engage-pii-receiver-${randomBytes(4).toString('hex')}.jsonl`);

before(async () => {
  receiver = await startReceiver({ dataFile });
  env = await createTestEnv({
    EXTERNAL_API_URL: receiver.url,
    CDC_COMMIT_INTERVAL_MS: '20',
    WAREHOUSE_FLUSH_SECONDS: '1',
  });
  db = await pgClient(env.config);
  await db.query(
    `INSERT INTO content (id, slug, title, content_type, length_seconds, publish_ts) VALUES ($1, 'pii-e2e', 'PII e2e', 'video', 600, now() - interval '1 day')`,
    [CONTENT_ID],
  );
});

after(async () => {
  await db?.end();
  await receiver?.close();
  await env?.cleanup();
});

function leaks(where: string, text: string): string[] {
  const found: string[] = [];
  for (const u of USERS) {
    if (text.includes(u)) found.push(`${where}: ${u}`);
    if (text.includes(u.replaceAll('-', ''))) found.push(`${where}: ${u} (32 hex)`);
  }
  return found;
}

async function scanTopics(topics: string[]): Promise<{ text: string; records: number }> {
  const config = env.config;
  const consumer = createConsumer(createKafka(config, `${config.KAFKA_CLIENT_ID}-pii-scan`), {
    groupId: `pii-scan-${randomBytes(4).toString('hex')}`,
    fromBeginning: true,
    readCommitted: false, // aborted transactions' records too: they are bytes on the broker
  });
  const parts: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics });
    let last = Date.now();
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          parts.push(`${m.key?.toString('latin1') ?? ''}\n${m.value?.toString('latin1') ?? ''}`);
          for (const h of Object.values(m.headers ?? {})) parts.push(String(h));
        }
        last = Date.now();
      },
    });
    // Every record written is committed by now (the components stopped): read until two quiet seconds.
    await waitFor('the topics read to their end', () => parts.length > 0 && Date.now() - last > 2000, 60_000);
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  return { text: parts.join('\n'), records: parts.length };
}

async function scanRedis(): Promise<{ text: string; keys: number; uniqueUsers: number }> {
  const client = createClient({ url: env.config.redisUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const parts: string[] = [];
    const hll: string[] = [];
    let keys = 0;
    for await (const batch of client.scanIterator({ MATCH: `${env.config.REDIS_KEY_PREFIX}*`, COUNT: 500 })) {
      for (const key of Array.isArray(batch) ? batch : [batch]) {
        keys++;
        parts.push(key);
        const type = await client.type(key);
        if (type === 'string') parts.push((await client.get(key)) ?? '');
        else if (type === 'hash') parts.push(JSON.stringify(await client.hGetAll(key)));
        else if (type === 'zset') parts.push(JSON.stringify(await client.zRangeWithScores(key, 0, -1)));
        else if (type === 'list') parts.push(JSON.stringify(await client.lRange(key, 0, -1)));
        else if (type === 'set') parts.push(JSON.stringify(await client.sMembers(key)));
        else if (type === 'stream') parts.push(JSON.stringify(await client.xRange(key, '-', '+')));
        else parts.push(`<${type}>`);
        if (key.includes(':u:') && key.endsWith(CONTENT_ID)) hll.push(key);
      }
    }
    const uniqueUsers = hll.length > 0 ? await client.pfCount(hll) : 0;
    return { text: parts.join('\n'), keys, uniqueUsers };
  } finally {
    await client.quit().catch(() => undefined);
  }
}

async function scanWarehouse(file: string): Promise<string> {
  const tables = await queryWarehouse(
    file,
    `SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('information_schema', 'pg_catalog')`,
  );
  const parts: string[] = [];
  for (const t of tables) {
    const rows = await queryWarehouse(file, `SELECT * FROM "${String(t.table_schema)}"."${String(t.table_name)}"`);
    parts.push(
      `${String(t.table_name)}: ${JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`,
    );
  }
  return parts.join('\n');
}

test(
  'the raw user_id is nowhere in Kafka, Redis, DuckDB or the receiver; distinct users are counted right',
  { timeout: 180_000 },
  async () => {
    const config = env.config;
    const key = config.piiKeys[0];
    assert.ok(key);
    const total = N * EVENTS_PER_USER;
    // Half before the CDC starts (its snapshot), half while it streams.
    const insert = async (round: number) => {
      for (const user of USERS)
        await db.query(
          `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload)
         VALUES ($1, $2, 'play', now() - interval '5 seconds', 1000 + $3, 'web', '{"round": ${round}}')`,
          [CONTENT_ID, user, round],
        );
    };
    await insert(0);
    const cdc = await startCdc(config, log);
    const processor = await startProcessor(config, log);
    const sinks = await Promise.all(
      ['redis', 'warehouse', 'external'].map((n) => startSinkRunner(config, getSinkFactory(n), log)),
    );
    try {
      for (let round = 1; round < EVENTS_PER_USER; round++) await insert(round);
      await waitFor('every event in the receiver', () => receiver.stats().events_unique >= total, {
        timeoutMs: 120_000,
        describe: () => receiver.stats(),
      });
    } finally {
      for (const s of sinks.reverse()) await s.stop();
      await processor.stop();
      await cdc.stop();
    }

    const found: string[] = [];
    const topics = [
      config.KAFKA_TOPIC_ENGAGEMENT_EVENTS,
      config.KAFKA_TOPIC_CONTENT,
      config.KAFKA_TOPIC_ENRICHED,
      config.KAFKA_TOPIC_DLQ,
      config.KAFKA_TOPIC_CDC_POSITION,
    ];
    const kafka = await scanTopics(topics);
    found.push(...leaks('kafka', kafka.text));
    const redis = await scanRedis();
    found.push(...leaks('redis', redis.text));
    const warehouse = await scanWarehouse(config.DUCKDB_PATH);
    found.push(...leaks('duckdb', warehouse));
    const stored =
      readFileSync(dataFile, 'utf8') +
      receiver
        .eventIds()
        .map((id) => JSON.stringify(receiver.event(id)))
        .join('\n');
    found.push(...leaks('receiver', stored));
    assert.deepEqual(found, [], 'no raw user id anywhere');

    // What is there: the pseudonyms, and the right counts of distinct users.
    const pseudonyms = USERS.map((u) => pseudonym(key, u));
    for (const [where, text] of [
      ['kafka', kafka.text],
      ['redis', redis.text],
      ['duckdb', warehouse],
      ['receiver', stored],
    ] as const)
      assert.ok(
        pseudonyms.every((p) => text.includes(p)),
        `${where} holds every user's pseudonym`,
      );
    const [fact] = await queryWarehouse(
      config.DUCKDB_PATH,
      `SELECT count(*)::INTEGER AS events, count(DISTINCT user_id)::INTEGER AS users FROM engagement_events_enriched`,
    );
    assert.deepEqual(fact, { events: total, users: N });
    const users = await queryWarehouse(config.DUCKDB_PATH, `SELECT DISTINCT user_id FROM engagement_events_enriched`);
    assert.ok(users.every((u) => isPseudonym(String(u.user_id))));
    const perContent = await queryWarehouse(
      config.DUCKDB_PATH,
      `SELECT table_name FROM information_schema.columns WHERE column_name = 'unique_users'`,
    );
    assert.ok(perContent.length > 0, 'a view counts unique users');
    for (const v of perContent) {
      const [row] = await queryWarehouse(
        config.DUCKDB_PATH,
        `SELECT max(unique_users)::INTEGER AS n FROM "${String(v.table_name)}"`,
      );
      assert.equal(row?.n, N, `${String(v.table_name)}.unique_users`);
    }
    assert.equal(redis.uniqueUsers, N, "Redis's distinct users (HyperLogLog of pseudonyms)");
    assert.equal(receiver.stats().events_unique, total);
    assert.ok(kafka.records >= total * 2, `${kafka.records} records scanned`);
  },
);
