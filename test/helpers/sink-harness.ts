import { randomUUID } from 'node:crypto';
import type { Config } from '../../src/config/load.js';
import type { DlqEntry, EnrichedEvent } from '../../src/core/types.js';
import { createKafka } from '../../src/kafka/client.js';
import { readTopicRange } from '../../src/dlq/read.js';
import { parseDlqEntry } from '../../src/runtime/sink-decode.js';
import type { SinkRunner } from '../../src/runtime/sink-runner.js';
import { waitFor } from './wait.js';

/**
 * Helpers for tests that drive sinks through Kafka: realistic enriched events, producing them,
 * reading watermarks, committed offsets and the DLQ, and waiting for conditions (never for time).
 */

let seq = 0;

/** A valid enriched event, `now`-ish, unique id; override any field. */
export function enrichedEvent(overrides: Partial<EnrichedEvent> = {}): EnrichedEvent {
  seq++;
  const now = Date.now();
  const eventTs = new Date(now - 1000);
  const iso = eventTs.toISOString();
  return {
    schema_version: 1,
    event_id: `${now}${String(seq).padStart(6, '0')}`,
    content_id: randomUUID(),
    user_id: randomUUID(),
    event_type: 'play',
    event_ts: iso,
    duration_ms: 42000,
    device: 'web-chrome',
    raw_payload: { seq },
    extra: {},
    content_slug: `content-${seq % 7}`,
    content_title: `Content ${seq % 7}`,
    content_type: 'podcast',
    length_seconds: 600,
    publish_ts: '2024-01-01T00:00:00.000Z',
    engagement_seconds: 42,
    engagement_pct: 7,
    event_date: iso.slice(0, 10),
    event_hour: `${iso.slice(0, 13)}:00:00.000Z`,
    source_ts_ms: now - 500,
    processed_ts_ms: now - 100,
    origin: 'stream',
    quality_flags: [],
    ...overrides,
  };
}

export interface RawMessage {
  key: string | null;
  value: string | Buffer | null;
  partition?: number;
}

/** Produces messages (idempotent producer, acks=all) and waits for the acknowledgement. */
export async function produce(config: Config, topic: string, messages: RawMessage[]): Promise<void> {
  const producer = createKafka(config, `${config.KAFKA_CLIENT_ID}-test-producer`).producer({
    kafkaJS: { idempotent: true, acks: -1 },
  });
  await producer.connect();
  try {
    await producer.send({ topic, messages });
  } finally {
    await producer.disconnect();
  }
}

export function eventMessages(events: EnrichedEvent[], partition?: number): RawMessage[] {
  return events.map((e) => ({
    key: e.content_id,
    value: JSON.stringify(e),
    ...(partition === undefined ? {} : { partition }),
  }));
}

export async function highWatermarks(config: Config, topic: string): Promise<Map<number, string>> {
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-test-admin`).admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((w) => [w.partition, w.high]));
  } finally {
    await admin.disconnect();
  }
}

export async function committedOffsets(config: Config, groupId: string, topic: string): Promise<Map<number, string>> {
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-test-admin`).admin();
  await admin.connect();
  try {
    const out = new Map<number, string>();
    for (const t of await admin.fetchOffsets({ groupId, topics: [topic] })) {
      for (const p of t.partitions) if (/^\d+$/.test(p.offset)) out.set(p.partition, p.offset);
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}

export async function deleteGroup(config: Config, groupId: string): Promise<void> {
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-test-admin`).admin();
  await admin.connect();
  try {
    await admin.deleteGroups([groupId]);
  } finally {
    await admin.disconnect();
  }
}

export async function readDlq(config: Config): Promise<DlqEntry[]> {
  const out: DlqEntry[] = [];
  await readTopicRange(config, config.KAFKA_TOPIC_DLQ, (m) => {
    const e = parseDlqEntry(m.value);
    if (e) out.push(e);
  });
  return out;
}

/** True once the runner has settled every partition of the topic up to `hwm`. */
export function caughtUp(runner: SinkRunner, hwm: Map<number, string>): boolean {
  const snap = runner.snapshot();
  for (const [partition, high] of hwm) {
    const p = snap.partitions.find((x) => x.partition === partition);
    if (!p || BigInt(p.nextOffset) < BigInt(high) || p.busy || p.queued > 0) return false;
  }
  return true;
}

export async function waitCaughtUp(
  runner: SinkRunner,
  config: Config,
  topic: string,
  timeoutMs = 20000,
): Promise<Map<number, string>> {
  const hwm = await highWatermarks(config, topic);
  await waitFor('the runner has settled every partition', () => caughtUp(runner, hwm), {
    timeoutMs,
    describe: () => ({ hwm: Object.fromEntries(hwm), snap: runner.snapshot() }),
  });
  return hwm;
}

export function sum(m: Map<number, string>): number {
  let n = 0;
  for (const v of m.values()) n += Number(v);
  return n;
}
