import { DuckDBInstance } from '@duckdb/node-api';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { createClient } from 'redis';
import type { Config } from '../../src/config/load.js';
import { eventKey } from '../../src/core/event-identity.js';
import type { DlqEntry } from '../../src/core/types.js';
import { createKafka } from '../../src/kafka/client.js';
import { RedisKeys, windowMinutes } from '../../src/sinks/redis/keys.js';
import { committedOffsets, parseValues, readTopic } from '../processor/kafka-helpers.js';

/**
 * What each sink holds, read from the sink itself, for the proofs (harness.ts, test/faults). Every
 * event is named by its key, `<event_id>@<event_ts in µs>` (src/core/event-identity.ts eventKey):
 * ids are reused after `TRUNCATE … RESTART IDENTITY`.
 */

/**
 * Runs `sql` on the DuckDB warehouse opened READ_ONLY and closes the database again. DuckDB lets
 * one process write a file and nobody else open it meanwhile: call it while no warehouse sink runs
 * (the instance's lock is released before this returns, so the sink can start again at once).
 */
export async function queryWarehouse(duckdbPath: string, sql: string): Promise<Array<Record<string, unknown>>> {
  const duck = await DuckDBInstance.create(duckdbPath, { access_mode: 'READ_ONLY' });
  try {
    const conn = await duck.connect();
    try {
      return (await conn.runAndReadAll(sql)).getRowObjects() as Array<Record<string, unknown>>;
    } finally {
      conn.closeSync();
    }
  } finally {
    duck.closeSync();
  }
}

/** Every warehouse row's event key, one per row (a duplicate row appears twice). */
export async function warehouseKeys(duckdbPath: string): Promise<string[]> {
  const rows = await queryWarehouse(
    duckdbPath,
    'SELECT event_id::VARCHAR AS id, epoch_us(event_ts)::VARCHAR AS us FROM engagement_events_enriched',
  );
  return rows.map((r) => `${String(r.id)}@${String(r.us)}`);
}

export interface RedisWindow {
  /** The window's event count (the sum of every minute's `n`): what /metrics and the dashboard show. */
  total: number;
  /** The events the minute ledgers say were applied, as event keys. */
  keys: Set<string>;
}

/**
 * The Redis sink's whole window (REDIS_AGGREGATION_WINDOW_MINUTES), its count and its dedupe
 * ledgers read in one MULTI, so a write of the sink cannot fall between them. A ledger member is
 * `<event_id>.<µs within its minute>` (src/sinks/redis/batch-payload.ts ledgerMember).
 */
export async function readRedisWindow(config: Config, nowMs = Date.now()): Promise<RedisWindow> {
  const client = createClient({ url: config.redisUrl, socket: { connectTimeout: 5000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const keys = new RedisKeys(config.REDIS_KEY_PREFIX);
    const minutes = windowMinutes(nowMs, config.REDIS_AGGREGATION_WINDOW_MINUTES);
    const multi = client.multi().mGet(minutes.map((m) => keys.total(m)));
    for (const m of minutes) multi.sMembers(keys.ids(m));
    const [totals, ...ledgers] = (await multi.exec()) as unknown as [Array<string | null>, ...string[][]];
    const out = new Set<string>();
    ledgers.forEach((members, i) => {
      const minuteUs = BigInt(minutes[i] as number) * 60_000_000n;
      for (const member of members) {
        const dot = member.lastIndexOf('.');
        const us = member.slice(dot + 1);
        out.add(/^\d+$/.test(us) ? `${member.slice(0, dot)}@${(minuteUs + BigInt(us)).toString()}` : member);
      }
    });
    return { total: totals.reduce((acc, v) => acc + Number(v ?? 0), 0), keys: out };
  } finally {
    await client.quit().catch(() => undefined);
  }
}

export interface ParkedEntry {
  entry: DlqEntry;
  /** The parked event's id (from the record key) and its key when its bytes carry an event time. */
  id: string;
  key: string | null;
}

/** The event fields of a parked record: a change event's `after` row, or an enriched event. */
function parkedEvent(entry: DlqEntry): { event_id: string; event_ts: string } | null {
  if (entry.value_base64 === null) return null;
  try {
    const value = JSON.parse(Buffer.from(entry.value_base64, 'base64').toString('utf8')) as Record<string, unknown>;
    const after = value.after as Record<string, unknown> | undefined;
    const id = after?.id ?? value.event_id;
    const ts = after?.event_ts ?? value.event_ts;
    return id === undefined || typeof ts !== 'string' ? null : { event_id: String(id), event_ts: ts };
  } catch {
    return null;
  }
}

/** Every entry of the DLQ topic with the event it parked. */
export async function readDlq(config: Config): Promise<ParkedEntry[]> {
  return parseValues<DlqEntry>(await readTopic(config.kafkaBrokers, config.KAFKA_TOPIC_DLQ, 60000)).map((entry) => {
    let id = '';
    try {
      id = String((JSON.parse(entry.key ?? '{}') as { id?: unknown }).id ?? '');
    } catch {
      id = '';
    }
    const ev = parkedEvent(entry);
    return { entry, id: ev?.event_id ?? id, key: ev ? eventKey(ev) : null };
  });
}

/** True when `groupId` has committed, on every partition of the enriched topic, past the last record it holds now. */
export async function groupCaughtUp(config: Config, groupId: string): Promise<boolean> {
  const last = new Map<number, number>();
  for (const m of await readTopic(config.kafkaBrokers, config.KAFKA_TOPIC_ENRICHED, 60000))
    last.set(m.partition, Math.max(last.get(m.partition) ?? -1, m.offset));
  const committed = await committedOffsets(config, groupId, config.KAFKA_TOPIC_ENRICHED);
  return [...last].every(([p, off]) => (committed.get(p) ?? -1) >= off + 1);
}

/**
 * The enriched topic's last stable offsets (read_committed: up to the first open transaction), by
 * partition. A group whose committed offsets reach them has consumed every record committed before.
 */
export async function stableOffsets(config: Config): Promise<Map<number, number>> {
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-test-admin`).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(config.KAFKA_TOPIC_ENRICHED, {
      isolationLevel: KafkaJS.IsolationLevel.READ_COMMITTED,
    });
    return new Map(offsets.map((o) => [o.partition, Number(o.high)]));
  } finally {
    await admin.disconnect();
  }
}
