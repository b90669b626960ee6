import { spawn } from 'node:child_process';
import type { Config } from '../../src/config/load.js';
import type { EnrichedEvent } from '../../src/core/types.js';
import { createKafka } from '../../src/kafka/client.js';
import { tcpOpen, waitUntil } from '../../src/stack/process.js';
import { engageEntry } from '../../src/supervisor/entry.js';

/**
 * What the sink benches share: a pre-filled enriched topic (events as the processor writes them,
 * ~587 B each) and the reference receiver run as its own process, as deployed.
 */

/** Events per fill (BENCH_SINK_RUNTIME_EVENTS, default 400,000). */
export const EVENTS = Number(process.env.BENCH_SINK_RUNTIME_EVENTS ?? 400_000);

export function benchEvent(i: number, now: number): EnrichedEvent {
  const ts = new Date(now - (i % 600) * 1000).toISOString();
  return {
    schema_version: 1,
    event_id: String(1_000_000_000 + i),
    content_id: `content-${i % 1000}`,
    user_id: `user-${i % 20000}`,
    event_type: 'play',
    event_ts: ts,
    duration_ms: 42_000,
    device: 'ios',
    raw_payload: { session: i % 97 },
    extra: {},
    content_slug: `slug-${i % 1000}`,
    content_title: `A title for content ${i % 1000}`,
    content_type: 'podcast',
    length_seconds: 600,
    publish_ts: '2024-01-01T00:00:00.000Z',
    engagement_seconds: 42,
    engagement_pct: 7,
    event_date: ts.slice(0, 10),
    event_hour: `${ts.slice(0, 13)}:00:00.000Z`,
    source_ts_ms: now,
    processed_ts_ms: now,
    origin: 'stream',
    quality_flags: [],
  };
}

/**
 * Fills the enriched topic with EVENTS events whose ids start at `first`; `hotKey` puts every
 * record under one key (so on one partition).
 */
export async function fill(config: Config, first = 0, hotKey?: string): Promise<number> {
  const producer = createKafka(config, `${config.KAFKA_CLIENT_ID}-fill`).producer({
    kafkaJS: { idempotent: true, acks: -1 },
    'linger.ms': 20,
    'compression.type': 'lz4',
  });
  await producer.connect();
  const now = Date.now();
  let bytes = 0;
  try {
    for (let i = 0; i < EVENTS; i += 10_000) {
      const messages = Array.from({ length: Math.min(10_000, EVENTS - i) }, (_, j) => {
        const e = benchEvent(first + i + j, now);
        const value = JSON.stringify(e);
        bytes += value.length;
        return { key: hotKey ?? e.content_id, value };
      });
      await producer.send({ topic: config.KAFKA_TOPIC_ENRICHED, messages });
    }
  } finally {
    await producer.disconnect();
  }
  return bytes / EVENTS;
}

/** The reference receiver as its own process (as deployed), on a free port; resolves with its URL and a stop function. */
export async function startReceiverProcess(): Promise<{
  url: string;
  pid: number | undefined;
  stop: () => Promise<void>;
}> {
  const port = 20_000 + Math.floor(Math.random() * 5000);
  const entry = engageEntry();
  const child = spawn(entry.node, [...entry.args, 'external-receiver', '--port', String(port)], {
    stdio: 'ignore',
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  await waitUntil('the reference receiver', () => tcpOpen('127.0.0.1', port, 300), {
    timeoutMs: 30_000,
    alive: () => child.exitCode === null,
  });
  return {
    url: `http://127.0.0.1:${port}/events`,
    pid: child.pid,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
