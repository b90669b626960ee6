import { spawn, type ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createClient } from 'redis';
import type { EnrichedEvent } from '../src/core/types.js';
import { RedisSink } from '../src/sinks/redis/index.js';
import { createTestEnv } from '../test/helpers/env.js';
import type { BenchResult } from './types.js';

/**
 * GET /top-content under load. Redis holds a realistic window (CONTENT items, EVENTS events spread
 * over the last 9 minutes, written by the real Redis sink); `engage api` runs as its own process
 * on an ephemeral port, as deployed; autocannon in this process drives it over HTTP/1.1 keep-alive
 * at several concurrency levels for SECONDS each after a warm-up, timing every request.
 * Also measured: /content/:id/stats (no cache on that path) and /metrics/prometheus.
 * Target (issue 6): at least 5,000 requests/s with p99 below 20 ms on this machine.
 */

const CONTENT = 500;
const EVENTS = 50_000;
/** Concurrency levels measured: latency grows with queueing (Little's law), throughput saturates. */
const CONNECTIONS = [8, 16, 32];
const WARMUP_S = 2;
const SECONDS = 10;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function events(): { all: EnrichedEvent[]; ids: string[] } {
  const ids = Array.from({ length: CONTENT }, () => randomUUID());
  const now = Date.now();
  const all = Array.from({ length: EVENTS }, (_, i): EnrichedEvent => {
    // Zipf-like popularity: a few items get most of the engagement.
    const c = Math.floor(CONTENT * Math.pow(((i * 7919) % EVENTS) / EVENTS, 3));
    const ts = now - ((i * 104_729) % 540_000);
    const iso = new Date(ts).toISOString();
    const seconds = 5 + ((i * 37) % 600);
    return {
      schema_version: 1,
      event_id: String(i + 1),
      content_id: ids[c] as string,
      user_id: `u${i % 5000}`,
      event_type: (['play', 'pause', 'finish', 'click'] as const)[i % 4] ?? 'play',
      event_ts: iso,
      duration_ms: seconds * 1000,
      device: 'web',
      raw_payload: null,
      extra: {},
      content_slug: `content-${c}`,
      content_title: `Content number ${c}`,
      content_type: (['podcast', 'video', 'newsletter'] as const)[c % 3] ?? null,
      length_seconds: 900,
      publish_ts: '2025-01-01T00:00:00.000Z',
      engagement_seconds: seconds,
      engagement_pct: (seconds / 900) * 100,
      event_date: iso.slice(0, 10),
      event_hour: `${iso.slice(0, 13)}:00:00.000Z`,
      source_ts_ms: ts,
      processed_ts_ms: ts,
      origin: 'stream',
      quality_flags: [],
    };
  });
  return { all, ids };
}

interface Load {
  rps: number;
  requests: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/**
 * `connections` keep-alive connections issuing requests back to back (no pipelining) for
 * `seconds` after a 2 s warm-up, by autocannon; latencies are per request, in ms.
 */
async function load(url: string, connections: number, seconds: number, paths?: () => string): Promise<Load> {
  const requests = paths
    ? { requests: [{ method: 'GET' as const, setupRequest: (req: autocannon.Request) => ({ ...req, path: paths() }) }] }
    : {};
  await autocannon({ url, connections, duration: WARMUP_S, ...requests });
  const result = await autocannon({ url, connections, duration: seconds, ...requests });
  const errors = result.errors + result.timeouts + result.non2xx;
  return {
    rps: Math.round(result.requests.total / result.duration),
    requests: result.requests.total,
    errors,
    seconds: result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    p999: result.latency.p99_9,
    max: result.latency.max,
  };
}

/** The 1-minute load average: the machine is shared, and figures move with it. */
function loadavg(): string {
  return (os.loadavg()[0] ?? 0).toFixed(1);
}

function startApiProcess(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'api', '--port', '0'], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('engage api did not print its URL within 30 s')), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    });
    child.on('exit', (code) => reject(new Error(`engage api exited with ${code}`)));
  });
}

export async function run(): Promise<BenchResult[]> {
  const env = await createTestEnv({ LOG_LEVEL: 'warn' });
  const { config } = env;
  const { all, ids } = events();
  const sink = new RedisSink({ config, log: pino({ level: 'silent' }) });
  await sink.start();
  const topic = config.KAFKA_TOPIC_ENRICHED;
  for (let i = 0; i < all.length; i += 5000) {
    const chunk = all.slice(i, i + 5000);
    await sink.write({
      topic,
      partition: 0,
      records: chunk.map((event, k) => ({ topic, partition: 0, offset: String(i + k), key: event.content_id, event })),
      nextOffset: String(i + chunk.length),
    });
  }
  await sink.close();
  const api = await startApiProcess({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LOG_LEVEL: 'warn',
    DATABASE_URL: config.databaseUrl,
    KAFKA_BOOTSTRAP_SERVERS: config.kafkaBrokers.join(','),
    REDIS_URL: config.redisUrl,
    REDIS_KEY_PREFIX: config.REDIS_KEY_PREFIX,
    CDC_SLOT_NAME: config.CDC_SLOT_NAME,
    STACK_DIR: config.STACK_DIR,
  });
  const results: BenchResult[] = [];
  try {
    const check = await fetch(`${api.url}/top-content?limit=10`);
    const body = (await check.json()) as { items: unknown[] };
    if (check.status !== 200 || body.items.length !== 10)
      throw new Error(`/top-content answered ${check.status} with ${body.items.length} items`);
    // JIT warm-up of the server before the first measured level.
    await autocannon({ url: `${api.url}/top-content?limit=10`, connections: 16, duration: 5 });
    for (const connections of CONNECTIONS) {
      const top = await load(`${api.url}/top-content?limit=10`, connections, SECONDS);
      const tag = `/top-content?limit=10, ${connections} connections`;
      results.push(
        {
          name: `${tag}: throughput`,
          value: top.rps,
          unit: 'req/s',
          note: `${top.requests.toLocaleString('en-US')} requests in ${top.seconds.toFixed(1)} s, ${top.errors} errors, load average ${loadavg()}`,
        },
        {
          name: `${tag}: latency p50 / p99`,
          value: top.p99,
          unit: 'ms p99',
          note: `p50 ${top.p50} ms, p99.9 ${top.p999} ms, max ${top.max} ms`,
        },
      );
    }
    let k = 0;
    const stats = await load(`${api.url}/`, 16, 5, () => `/content/${ids[k++ % 50]}/stats`);
    results.push(
      {
        name: '/content/:id/stats, 16 connections: throughput',
        value: stats.rps,
        unit: 'req/s',
        note: `${stats.errors} errors; no response cache on this path; load average ${loadavg()}`,
      },
      {
        name: '/content/:id/stats, 16 connections: latency p99',
        value: stats.p99,
        unit: 'ms p99',
        note: `p50 ${stats.p50} ms`,
      },
    );
    results.push({
      name: 'window in Redis',
      value: EVENTS,
      unit: 'events',
      note: `${CONTENT} content items, written by the Redis sink`,
    });
  } finally {
    api.child.kill('SIGTERM');
    await new Promise((r) => api.child.once('exit', r));
    const redis = createClient({ url: config.redisUrl });
    await redis.connect();
    const keys: string[] = [];
    for await (const chunk of redis.scanIterator({ MATCH: `${config.REDIS_KEY_PREFIX}*`, COUNT: 1000 }))
      keys.push(...chunk);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(keys.slice(i, i + 1000));
    await redis.close();
    await env.cleanup();
  }
  return results;
}
