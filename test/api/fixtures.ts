import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createClient } from 'redis';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../src/config/load.js';
import { envSchema } from '../../src/config/schema.js';
import type { EnrichedEvent, EventType } from '../../src/core/types.js';
import { buildApi } from '../../src/api/app.js';
import { createApiDeps, type ApiDeps } from '../../src/api/deps.js';
import { createKafka, idempotentProducer } from '../../src/kafka/client.js';
import { heartbeatKey, type Heartbeat } from '../../src/runtime/heartbeat.js';
import { RedisSink } from '../../src/sinks/redis/index.js';

/** Shared set-up for the API tests: an API on an isolated environment, real Redis data, heartbeats. */

export interface TestApi {
  app: FastifyInstance;
  deps: ApiDeps;
  close(): Promise<void>;
}

/**
 * The API with real clients on `config`. Its process registry is replaced by an empty one, so what
 * /metrics shows comes from heartbeats only (the test process's own registry holds whatever other
 * code it imported).
 */
export async function startTestApi(config: Config, processRegistry: Registry = new Registry()): Promise<TestApi> {
  const owned = await createApiDeps(config);
  const deps: ApiDeps = { ...owned.deps, processRegistry };
  const app = buildApi(config, deps);
  await app.ready();
  return {
    app,
    deps,
    async close() {
      await app.close();
      await owned.close();
    },
  };
}

/** The environment variables that reproduce `config` in a child process (`engage …` commands). */
export function configEnv(config: Config, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  const values = config as unknown as Record<string, unknown>;
  for (const key of Object.keys(envSchema.shape)) {
    const v = values[key];
    if (v !== undefined && v !== null) env[key] = String(v);
  }
  return {
    ...env,
    DATABASE_URL: config.databaseUrl,
    KAFKA_BOOTSTRAP_SERVERS: config.kafkaBrokers.join(','),
    REDIS_URL: config.redisUrl,
    ...extra,
  };
}

export interface ContentSpec {
  id: string;
  title: string;
  type?: 'podcast' | 'newsletter' | 'video';
  length?: number;
}

export function content(title: string, type: ContentSpec['type'] = 'video'): ContentSpec {
  return { id: randomUUID(), title, type, length: 600 };
}

let seq = 0;

/** An enriched event as the processor emits it, for `c` at `ts`. */
export function enriched(
  c: ContentSpec,
  opts: { ts?: number; type?: EventType; seconds?: number; user?: string; sourceTs?: number } = {},
): EnrichedEvent {
  const ts = opts.ts ?? Date.now();
  const sourceTs = opts.sourceTs ?? ts;
  const iso = new Date(ts).toISOString();
  const seconds = opts.seconds ?? 30;
  seq += 1;
  return {
    schema_version: 1,
    event_id: String(1_000_000 + seq),
    content_id: c.id,
    user_id: opts.user ?? randomUUID(),
    event_type: opts.type ?? 'play',
    event_ts: iso,
    duration_ms: seconds * 1000,
    device: 'web',
    raw_payload: null,
    extra: {},
    content_slug: c.title.toLowerCase().replace(/[^a-z0-9]+/g, '-'),
    content_title: c.title,
    content_type: c.type ?? 'video',
    length_seconds: c.length ?? 600,
    publish_ts: '2025-01-01T00:00:00.000Z',
    engagement_seconds: seconds,
    engagement_pct: c.length ? (seconds / c.length) * 100 : null,
    event_date: iso.slice(0, 10),
    event_hour: `${iso.slice(0, 13)}:00:00.000Z`,
    source_ts_ms: sourceTs,
    processed_ts_ms: sourceTs,
    origin: 'stream',
    quality_flags: [],
  };
}

/** Writes `events` through the real Redis sink (one batch on partition 0 from `firstOffset`). */
export async function writeThroughSink(config: Config, events: EnrichedEvent[], firstOffset = 0): Promise<void> {
  const sink = new RedisSink({ config, log: pino({ level: 'silent' }) });
  await sink.start();
  try {
    const topic = config.KAFKA_TOPIC_ENRICHED;
    await sink.write({
      topic,
      partition: 0,
      records: events.map((event, i) => ({
        topic,
        partition: 0,
        offset: String(firstOffset + i),
        key: event.content_id,
        event,
      })),
      nextOffset: String(firstOffset + events.length),
    });
  } finally {
    await sink.close();
  }
}

export interface EventFeed {
  send(events: EnrichedEvent[]): Promise<void>;
  close(): Promise<void>;
}

/** A producer to the environment's enriched topic, keyed by content id (as the processor does). */
export async function eventFeed(config: Config): Promise<EventFeed> {
  const producer = idempotentProducer(createKafka(config, `${config.KAFKA_CLIENT_ID}-test-producer`));
  await producer.connect();
  return {
    async send(events) {
      for (let i = 0; i < events.length; i += 500) {
        const chunk = events.slice(i, i + 500);
        await producer.send({
          topic: config.KAFKA_TOPIC_ENRICHED,
          messages: chunk.map((e) => ({ key: e.content_id, value: JSON.stringify(e) })),
        });
      }
    },
    close: () => producer.disconnect(),
  };
}

/** A heartbeat in the exact shape src/runtime/heartbeat.ts publishes, from a registry of the test's. */
export async function heartbeatOf(
  component: string,
  instance: string,
  registry: Registry,
  opts: { sentAt?: number; startedAt?: number; status?: Record<string, unknown> } = {},
): Promise<Heartbeat> {
  const sentAt = opts.sentAt ?? Date.now();
  return {
    component,
    instance,
    pid: 4242,
    host: 'test-host',
    started_at: new Date(opts.startedAt ?? sentAt - 60_000).toISOString(),
    sent_at: new Date(sentAt).toISOString(),
    status: opts.status ?? {},
    metrics: await registry.getMetricsAsJSON(),
  };
}

export type TestRedis = ReturnType<typeof createClient>;

export async function redisClient(config: Config): Promise<TestRedis> {
  const client = createClient({ url: config.redisUrl });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Publishes `hb` under its heartbeat key with the publisher's TTL (6 s). */
export async function publish(client: TestRedis, config: Config, hb: Heartbeat): Promise<void> {
  await client.set(heartbeatKey(config.REDIS_KEY_PREFIX, hb.component, hb.instance), JSON.stringify(hb), {
    expiration: { type: 'PX', value: 6000 },
  });
}

/** Deletes every key under the environment's prefix. */
export async function wipePrefix(client: TestRedis, prefix: string): Promise<void> {
  const keys: string[] = [];
  for await (const chunk of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) keys.push(...chunk);
  if (keys.length > 0) await client.del(keys);
}
