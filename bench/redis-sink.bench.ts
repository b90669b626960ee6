import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { pino } from 'pino';
import { loadConfig, type Config } from '../src/config/load.js';
import type { EnrichedEvent, EventType } from '../src/core/types.js';
import type { SinkBatch } from '../src/core/sink-contract.js';
import { connectRedis, type RedisClient } from '../src/sinks/redis/lua-script.js';
import { RedisReader } from '../src/sinks/redis/read.js';
import { REDIS_WRITE_CONCURRENCY } from '../src/sinks/redis/options.js';
import { RedisSink } from '../src/sinks/redis/redis-sink.js';
import type { BenchResult } from './types.js';

/**
 * The Redis sink alone against the real Redis: events/s through write() (5,000-record partition
 * batches, as the runtime cuts them), the cost of the event-id dedupe (same load with it off, and
 * the ledger's memory), a backfill re-sending everything (all duplicates), the latency of a small
 * batch (the 1,000 events/s case), and the read side: topContent and contentStats under
 * concurrent load. Uses its own key prefix and deletes it afterwards.
 */

const EVENTS = 200_000;
const CONTENTS = 1_000;
const USERS = 20_000;
const BATCH = 5_000;
const PARTITIONS = 3;
const READ_SECONDS = 4;
const READ_CONCURRENCY = 32;
const TYPES: EventType[] = ['play', 'pause', 'finish', 'click'];

/** Events over `count`, event times spread uniformly over the `spreadMs` before `now`. */
function makeEvents(count: number, idBase: number, now: number, spreadMs = 60_000): EnrichedEvent[] {
  return Array.from({ length: count }, (_, i) => {
    const ts = new Date(now - Math.floor(Math.random() * spreadMs)).toISOString();
    const content = `content-${(i * 7919) % CONTENTS}`;
    const eng = Math.round(Math.random() * 300_000) / 1000;
    return {
      schema_version: 1,
      event_id: String(idBase + i),
      content_id: content,
      user_id: `user-${Math.floor(Math.random() * USERS)}`,
      event_type: TYPES[i % 4] as EventType,
      event_ts: ts,
      duration_ms: Math.round(eng * 1000),
      device: 'ios',
      raw_payload: { session: i % 97 },
      extra: {},
      content_slug: `slug-${content}`,
      content_title: `A title for ${content}`,
      content_type: 'podcast',
      length_seconds: 600,
      publish_ts: '2024-01-01T00:00:00.000Z',
      engagement_seconds: eng,
      engagement_pct: Math.round((eng / 600) * 100_000) / 1000,
      event_date: ts.slice(0, 10),
      event_hour: `${ts.slice(0, 13)}:00:00.000Z`,
      source_ts_ms: now,
      processed_ts_ms: now,
      origin: 'stream',
      quality_flags: [],
    };
  });
}

function batches(events: EnrichedEvent[], offsetBase = 0): SinkBatch[] {
  const perPartition: EnrichedEvent[][] = Array.from({ length: PARTITIONS }, () => []);
  events.forEach((e, i) => perPartition[i % PARTITIONS]!.push(e));
  const out: SinkBatch[] = [];
  perPartition.forEach((list, partition) => {
    for (let i = 0; i < list.length; i += BATCH) {
      const slice = list.slice(i, i + BATCH);
      const first = offsetBase + i;
      out.push({
        topic: 'bench-enriched',
        partition,
        records: slice.map((event, j) => ({
          topic: 'bench-enriched',
          partition,
          offset: String(first + j),
          key: event.content_id,
          event,
        })),
        nextOffset: String(first + slice.length),
      });
    }
  });
  return out;
}

/** Redis's CPU seconds so far (main thread; includes every client of that Redis). */
async function redisCpu(client: RedisClient): Promise<number> {
  const info = await client.info('cpu');
  const get = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return get('used_cpu_user_main_thread') + get('used_cpu_sys_main_thread');
}

interface Rate {
  eventsPerSecond: number;
  nodeUsPerEvent: number;
  redisUsPerEvent: number;
}

/**
 * Writes the batches, one write in flight per partition (`inFlight` 'partition': the sink's own
 * ceiling, Node building the next payload while Redis runs the last), or one at a time overall.
 */
async function throughput(
  sink: RedisSink,
  list: SinkBatch[],
  admin: RedisClient,
  inFlight: 'partition' | 'one' = 'partition',
): Promise<Rate> {
  const byPartition = new Map<number, SinkBatch[]>();
  for (const b of list) {
    const lane = inFlight === 'one' ? 0 : b.partition;
    byPartition.set(lane, [...(byPartition.get(lane) ?? []), b]);
  }
  const total = list.reduce((a, b) => a + b.records.length, 0);
  const r0 = await redisCpu(admin);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    [...byPartition.values()].map(async (bs) => {
      for (const b of bs) await sink.write(b);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const r1 = await redisCpu(admin);
  return {
    eventsPerSecond: total / seconds,
    nodeUsPerEvent: (cpu.user + cpu.system) / total,
    redisUsPerEvent: ((r1 - r0) * 1e6) / total,
  };
}

function loadNote(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
}

function cpuNote(r: Rate): string {
  return `CPU per event: sink process ${r.nodeUsPerEvent.toFixed(1)} µs, Redis ${r.redisUsPerEvent.toFixed(1)} µs (→ Redis-bound ceiling ${Math.round(1e6 / r.redisUsPerEvent).toLocaleString('en-US')} events/s)`;
}

async function load(fn: () => Promise<unknown>): Promise<{ rps: number; p50: number; p99: number }> {
  const lat: number[] = [];
  const end = performance.now() + READ_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: READ_CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await fn();
        lat.push(performance.now() - t);
      }
    }),
  );
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  return { rps: lat.length / READ_SECONDS, p50: q(0.5), p99: q(0.99) };
}

async function memoryOf(client: RedisClient, pattern: string): Promise<number> {
  let bytes = 0;
  for await (const keys of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
    for (const k of keys) bytes += (await client.memoryUsage(k, { SAMPLES: 0 })) ?? 0;
  }
  return bytes;
}

async function wipe(client: RedisClient, prefix: string): Promise<void> {
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 }))
    if (keys.length > 0) await client.del(keys);
}

export async function run(): Promise<BenchResult[]> {
  const base = loadConfig();
  const root = `bench-redis-${randomBytes(3).toString('hex')}:`;
  const config: Config = { ...base, REDIS_KEY_PREFIX: root };
  const ctx = { config, log: pino({ level: 'silent' }) };
  const admin = await connectRedis(config.redisUrl, 'engage-bench-admin');
  const results: BenchResult[] = [];
  const sinks: RedisSink[] = [];
  const sink = async (prefix: string, dedupe = true) => {
    const s = new RedisSink(ctx, { prefix, dedupe });
    await s.start();
    sinks.push(s);
    return s;
  };
  try {
    const now = Date.now();
    const events = makeEvents(EVENTS, 1, now);
    const note = `${EVENTS.toLocaleString('en-US')} events over the last 60 s of event time, ${CONTENTS} contents, ${USERS.toLocaleString('en-US')} users, ${BATCH}-record batches on ${PARTITIONS} partitions`;

    await throughput(await sink(`${root}warm:`), batches(makeEvents(20_000, 10_000_000, now)), admin); // JIT, script cache
    await wipe(admin, `${root}warm:`);
    const main = await sink(`${root}a:`);
    const rate = await throughput(main, batches(events), admin);
    results.push({
      name: 'sink write throughput (dedupe on)',
      value: Math.round(rate.eventsPerSecond),
      unit: 'events/s',
      note: `${note}, one write in flight per partition (the runner allows ${REDIS_WRITE_CONCURRENCY} partitions at once); ${cpuNote(rate)}; load average ${loadNote()}`,
    });

    const noDedupe = await sink(`${root}b:`, false);
    const rateOff = await throughput(noDedupe, batches(events), admin);
    results.push({
      name: 'sink write throughput (dedupe off, measurement only)',
      value: Math.round(rateOff.eventsPerSecond),
      unit: 'events/s',
      note: cpuNote(rateOff),
    });
    results.push({
      name: 'dedupe cost in Redis CPU',
      value: Number((rate.redisUsPerEvent - rateOff.redisUsPerEvent).toFixed(1)),
      unit: 'µs/event',
    });

    const sequential = await throughput(await sink(`${root}d:`), batches(makeEvents(EVENTS, 1, now)), admin, 'one');
    results.push({
      name: 'sink write throughput, one write in flight',
      value: Math.round(sequential.eventsPerSecond),
      unit: 'events/s',
      note: cpuNote(sequential),
    });
    await wipe(admin, `${root}d:`);

    const rebuild = await throughput(await sink(`${root}c:`), batches(makeEvents(EVENTS, 1, now, 9 * 60_000)), admin);
    results.push({
      name: 'sink write throughput, event times over 9 minutes (a rebuild)',
      value: Math.round(rebuild.eventsPerSecond),
      unit: 'events/s',
      note: cpuNote(rebuild),
    });
    await wipe(admin, `${root}c:`);

    const ledger = await memoryOf(admin, `${root}a:rs:m:*:ids`);
    results.push({
      name: 'dedupe ledger memory',
      value: Math.round(ledger / EVENTS),
      unit: 'bytes/event',
      note: `${(ledger / 2 ** 20).toFixed(1)} MiB for ${EVENTS.toLocaleString('en-US')} events in the window`,
    });
    const minuteKeys = await memoryOf(admin, `${root}a:rs:m:*`);
    results.push({
      name: 'minute buckets incl. ledger',
      value: Math.round(minuteKeys / EVENTS),
      unit: 'bytes/event',
      note: `${(minuteKeys / 2 ** 20).toFixed(1)} MiB`,
    });
    const recentKeys = await memoryOf(admin, `${root}a:rs:recent:*`);
    results.push({
      name: 'recent-event lists (bounded: contents × REDIS_RECENT_EVENTS)',
      value: Number((recentKeys / 2 ** 20).toFixed(1)),
      unit: 'MiB',
      note: `${CONTENTS} contents × ${config.REDIS_RECENT_EVENTS} events, one projection (recent-event.ts) per event`,
    });

    const resend = events.map((e) => ({ ...e, origin: 'backfill' as const }));
    const dupRate = await throughput(main, batches(resend, 1_000_000), admin);
    results.push({
      name: 'backfill re-send, all duplicates',
      value: Math.round(dupRate.eventsPerSecond),
      unit: 'events/s',
      note: cpuNote(dupRate),
    });

    // At 1,000 events/s with 100 ms batching over 3 partitions, a partition batch holds ~34 events.
    const small = makeEvents(34 * 200, 20_000_000, now);
    const lat: number[] = [];
    for (let i = 0; i < 200; i++) {
      const records = small.slice(i * 34, (i + 1) * 34).map((event, j) => ({
        topic: 'bench-small',
        partition: 0,
        offset: String(i * 34 + j),
        key: event.content_id,
        event,
      }));
      const t = performance.now();
      await main.write({ topic: 'bench-small', partition: 0, records, nextOffset: String((i + 1) * 34) });
      lat.push(performance.now() - t);
    }
    lat.sort((a, b) => a - b);
    results.push({
      name: 'write latency of a 34-event batch (1,000 ev/s case) p50',
      value: Number(lat[100]!.toFixed(2)),
      unit: 'ms',
    });
    results.push({ name: 'write latency of a 34-event batch p99', value: Number(lat[198]!.toFixed(2)), unit: 'ms' });

    const readClient = await connectRedis(config.redisUrl, 'engage-bench-reader');
    try {
      const reader = (cacheMs: number | undefined, processCache = true) =>
        new RedisReader(readClient, {
          prefix: `${root}a:`,
          windowMinutes: config.REDIS_AGGREGATION_WINDOW_MINUTES,
          cacheMs,
          processCache,
        });
      const readNote = `${READ_CONCURRENCY} concurrent callers on one connection, ${CONTENTS} contents × 10 minutes`;
      const cachedReader = reader(undefined);
      const top = await load(() => cachedReader.topContent({ limit: 10 }));
      results.push({
        name: 'topContent(limit 10), default (200 ms caches)',
        value: Math.round(top.rps),
        unit: 'req/s',
        note: `${readNote}; p50 ${top.p50.toFixed(2)} ms, p99 ${top.p99.toFixed(2)} ms`,
      });
      const redisCached = reader(undefined, false);
      const topR = await load(() => redisCached.topContent({ limit: 10 }));
      results.push({
        name: 'topContent(limit 10), Redis-cached union only',
        value: Math.round(topR.rps),
        unit: 'req/s',
        note: `p50 ${topR.p50.toFixed(2)} ms, p99 ${topR.p99.toFixed(2)} ms`,
      });
      const uncached = reader(0);
      const topU = await load(() => uncached.topContent({ limit: 10 }));
      results.push({
        name: 'topContent(limit 10), union recomputed every call',
        value: Math.round(topU.rps),
        unit: 'req/s',
        note: `p50 ${topU.p50.toFixed(2)} ms, p99 ${topU.p99.toFixed(2)} ms`,
      });
      let i = 0;
      const statsReader = reader(undefined, false);
      const stats = await load(() => statsReader.contentStats(`content-${i++ % CONTENTS}`));
      results.push({
        name: 'contentStats, 10-minute window, no process cache',
        value: Math.round(stats.rps),
        unit: 'req/s',
        note: `p50 ${stats.p50.toFixed(2)} ms, p99 ${stats.p99.toFixed(2)} ms`,
      });
    } finally {
      await readClient.close();
    }
  } finally {
    for (const s of sinks) await s.close();
    await wipe(admin, root);
    await admin.close();
  }
  return results;
}
