import { after, before } from 'node:test';
import { pino } from 'pino';
import type { Config } from '../../../src/config/load.js';
import type { EnrichedEvent, EventType } from '../../../src/core/types.js';
import type { SinkBatch, SinkContext, SinkRecord } from '../../../src/core/sink-contract.js';
import { connectRedis, type RedisClient } from '../../../src/sinks/redis/lua-script.js';
import { RedisReader } from '../../../src/sinks/redis/read.js';
import { RedisSink } from '../../../src/sinks/redis/redis-sink.js';
import { MINUTE_MS, minuteOf } from '../../../src/sinks/redis/keys.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';

/** Shared builders for the Redis sink tests: events, batches, a pinned clock, key snapshots. */

/** The middle of the current minute: a fixed clock that cannot cross a minute boundary mid-test. */
export const NOW = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;
export const MIN = 60_000;
export const TOPIC = 'enriched';
/** The start of NOW's minute. */
export const CUR_MINUTE = minuteOf(NOW) * MINUTE_MS;

export interface EventSpec {
  id: string | number;
  content: string;
  user?: string | null;
  type?: EventType;
  /** Event time as ms since epoch. */
  ts: number;
  eng?: number | null;
  pct?: number | null;
  origin?: 'stream' | 'backfill';
}

export function event(s: EventSpec): EnrichedEvent {
  const iso = new Date(s.ts).toISOString();
  const eng = s.eng === undefined ? 1 : s.eng;
  return {
    schema_version: 1,
    event_id: String(s.id),
    content_id: s.content,
    user_id: s.user === undefined ? 'u-default' : s.user,
    event_type: s.type ?? 'play',
    event_ts: iso,
    duration_ms: eng === null ? null : Math.round(eng * 1000),
    device: 'web',
    raw_payload: null,
    extra: {},
    content_slug: `slug-${s.content}`,
    content_title: `Title ${s.content}`,
    content_type: 'video',
    length_seconds: 120,
    publish_ts: '2024-01-01T00:00:00.000Z',
    engagement_seconds: eng,
    engagement_pct: s.pct === undefined ? null : s.pct,
    event_date: iso.slice(0, 10),
    event_hour: `${iso.slice(0, 13)}:00:00.000Z`,
    source_ts_ms: s.ts,
    processed_ts_ms: s.ts,
    origin: s.origin ?? 'stream',
    quality_flags: [],
  };
}

/** A batch of `events` on `partition`, offsets from `firstOffset` on. */
export function batch(events: EnrichedEvent[], firstOffset = 0, partition = 0, topic = TOPIC): SinkBatch {
  const records: SinkRecord[] = events.map((e, i) => ({
    topic,
    partition,
    offset: String(firstOffset + i),
    key: e.content_id,
    event: e,
  }));
  return { topic, partition, records, nextOffset: String(firstOffset + events.length) };
}

export function sinkContext(config: Config): SinkContext {
  return { config, log: pino({ level: 'silent' }) };
}

export async function startSink(config: Config, prefix: string, now = () => NOW): Promise<RedisSink> {
  const sink = new RedisSink(sinkContext(config), { prefix, now });
  await sink.start();
  return sink;
}

export function reader(client: RedisClient, prefix: string, windowMinutes = 10, now = () => NOW): RedisReader {
  return new RedisReader(client, { prefix, windowMinutes, cacheMs: 0, now });
}

export async function adminClient(config: Config): Promise<RedisClient> {
  return connectRedis(config.redisUrl, 'engage-test-admin');
}

export async function keysOf(client: RedisClient, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const chunk of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) out.push(...chunk);
  return out.sort();
}

/** Deletes every key under `prefix` (what FLUSHALL does to the sink, without touching others). */
export async function wipe(client: RedisClient, prefix: string): Promise<number> {
  const keys = await keysOf(client, prefix);
  if (keys.length > 0) await client.del(keys);
  return keys.length;
}

/**
 * A comparable picture of every key under `prefix`: type, content and absolute expiry. HLLs are
 * shown by their count (their bytes carry a cardinality cache that reads update).
 */
export async function snapshot(
  client: RedisClient,
  prefix: string,
  exclude: (key: string) => boolean = () => false,
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of await keysOf(client, prefix)) {
    if (exclude(key)) continue;
    const type = await client.type(key);
    const expires = await client.pExpireTime(key);
    let value: unknown;
    if (type === 'hash') value = await client.hGetAll(key);
    else if (type === 'zset') value = await client.zRangeWithScores(key, 0, -1);
    else if (type === 'set') value = (await client.sMembers(key)).sort();
    else if (key.includes(':u:')) value = `hll:${await client.pfCount(key)}`;
    else value = await client.get(key);
    out[key] = { type, expires, value };
  }
  return out;
}

export interface RedisTestFile {
  env(): TestEnv;
  /** A client outside any sink, to read and delete the file's keys. */
  admin(): RedisClient;
  /** A key prefix no other test of the file uses, under the env's isolated REDIS_KEY_PREFIX. */
  prefix(): string;
}

/**
 * For a test file of the Redis sink on the real Redis: an isolated test env and an admin client,
 * made before the file's tests; after them every key under the env's prefix is deleted.
 */
export function redisTestFile(): RedisTestFile {
  let env: TestEnv | undefined;
  let admin: RedisClient | undefined;
  let n = 0;
  before(async () => {
    env = await createTestEnv();
    admin = await adminClient(env.config);
  });
  after(async () => {
    if (admin && env) await wipe(admin, env.config.REDIS_KEY_PREFIX);
    await admin?.close();
    await env?.cleanup();
  });
  const made = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('redisTestFile: used before its before() hook ran');
    return v;
  };
  return {
    env: () => made(env),
    admin: () => made(admin),
    prefix: () => `${made(env).config.REDIS_KEY_PREFIX}${++n}:`,
  };
}
