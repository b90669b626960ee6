import { randomBytes } from 'node:crypto';
import { KafkaJS, RdKafka } from '@confluentinc/kafka-javascript';
import { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { connectionProps, consumerFetchProps, createKafka, type KafkaConnection } from '../kafka/client.js';
import { sleep } from '../core/sleep.js';
import type { OutMessage } from './envelope.js';
import { parseLsn } from './lsn.js';
import type { IncrementalProgress } from './incremental-snapshot/progress.js';

/**
 * The CDC's source position, stored in the compacted position topic under key = slot name and
 * written INSIDE the same Kafka transaction as the change events it covers (KIP-618 style). The last
 * committed record therefore says exactly which PostgreSQL transactions Kafka already holds.
 */
export interface CdcPosition {
  slot: string;
  server_name: string;
  /**
   * `snapshot`: written by the snapshot transaction; `streaming`: by a streamed batch;
   * `snapshot-pending`: committed just before the CDC creates its slot for a snapshot (lsn `0/0`),
   * so that a slot found later without a completed snapshot is known to be the CDC's own, from a
   * snapshot that never committed (it is dropped and the snapshot redone). Not a position: nothing
   * of the slot is in Kafka yet.
   */
  phase: 'snapshot' | 'streaming' | 'snapshot-pending';
  /** End LSN of the last PostgreSQL transaction included (after a snapshot: the slot's consistent
   *  point). Every transaction whose commit record starts below it is in Kafka. */
  lsn: string;
  /** Commit record LSN of that transaction (null after a snapshot). */
  commit_lsn: string | null;
  tx_id: number | null;
  commit_ts_ms: number | null;
  /**
   * Set when the Kafka transaction ended inside a PostgreSQL transaction too large for one (see
   * CDC_SPLIT_TRANSACTION_ROWS): that transaction (its commit record's LSN and xid) has its first
   * `changes` row changes in Kafka; `lsn` above still names the last complete one. Absent or null
   * otherwise (and in records written before splitting existed).
   */
  partial?: { commit_lsn: string; tx_id: number; changes: number } | null;
  /**
   * The incremental snapshot's progress (incremental-snapshot/progress.ts): the tasks left, the
   * current one's last key and chunk. Written in the same Kafka transaction as the chunks it
   * counts; carried forward by every later record. Absent in records written before it existed.
   */
  incremental?: IncrementalProgress | null;
  /** The snapshot this stream started from, carried forward by every later record. */
  snapshot: { consistent_point: string; rows: number; completed_at_ms: number } | null;
  written_at_ms: number;
}

export function positionRecord(topic: string, position: CdcPosition): OutMessage {
  return { topic, key: position.slot, value: JSON.stringify(position) };
}

/** The `snapshot-pending` record, committed just before the CDC creates its slot for a snapshot. */
export function snapshotPendingPosition(slot: string, serverName: string): CdcPosition {
  return {
    slot,
    server_name: serverName,
    phase: 'snapshot-pending',
    lsn: '0/0',
    commit_lsn: null,
    tx_id: null,
    commit_ts_ms: null,
    snapshot: null,
    written_at_ms: Date.now(),
  };
}

export function parsePosition(value: Buffer | null | undefined): CdcPosition | null {
  if (!value) return null;
  const parsed = JSON.parse(value.toString('utf8')) as Partial<CdcPosition>;
  if (typeof parsed.lsn !== 'string' || typeof parsed.slot !== 'string') {
    throw new PipelineError(
      'DECODE_FAILED',
      `position record without lsn/slot: ${value.toString('utf8').slice(0, 200)}`,
    );
  }
  return parsed as CdcPosition;
}

const WINDOW = 256;
const LSO_WAIT_MS = 120_000;

/**
 * The last committed position for `slot`, read with read_committed. Call it only AFTER the
 * transactional producer has been initialised (that fences a zombie and aborts its open transaction),
 * so no later commit of ours can appear behind this read. It first waits until the last stable offset
 * reaches the high watermark seen at the call (transactions other slots had open then are settled),
 * then scans backwards from the end in growing windows until it finds the key.
 */
export async function readLastPosition(
  conn: KafkaConnection,
  clientId: string,
  topic: string,
  slot: string,
): Promise<CdcPosition | null> {
  const admin = createKafka(conn, `${clientId}-cdc-position`).admin();
  await admin.connect();
  let bounds: Array<{ partition: number; low: number; end: number }>;
  try {
    const high = await admin.fetchTopicOffsets(topic, {
      timeout: 10000,
      isolationLevel: KafkaJS.IsolationLevel.READ_UNCOMMITTED,
    });
    // An answer without partitions or offsets is a broker not ready to say (just restarted or
    // unfrozen), not an empty topic: "no position" must never come from it.
    if (high.length === 0 || high.some((h) => !/^\d+$/.test(String(h.high)) || !/^\d+$/.test(String(h.low)))) {
      throw new PipelineError(
        'SERVICE_UNREACHABLE',
        `position topic ${topic}: the broker gave no offsets (${JSON.stringify(high)}); retrying`,
        { retriable: true },
      );
    }
    const deadline = Date.now() + LSO_WAIT_MS;
    for (;;) {
      const stable = await admin.fetchTopicOffsets(topic, {
        timeout: 10000,
        isolationLevel: KafkaJS.IsolationLevel.READ_COMMITTED,
      });
      const settled = high.every(
        (h) => Number(stable.find((s) => s.partition === h.partition)?.high ?? -1) >= Number(h.high),
      );
      if (settled) {
        bounds = stable.map((s) => ({ partition: s.partition, low: Number(s.low), end: Number(s.high) }));
        break;
      }
      if (Date.now() > deadline) {
        throw new PipelineError(
          'TIMEOUT',
          `position topic ${topic}: an open transaction did not settle within ${LSO_WAIT_MS / 1000} s`,
          { retriable: true },
        );
      }
      await sleep(100);
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  let found: CdcPosition | null = null;
  for (const b of bounds) {
    const p = await scanBackwards(conn, topic, b.partition, b.low, b.end, slot);
    // The key maps to one partition; should the partition count ever have changed, the furthest wins.
    if (p && (!found || parseLsn(p.lsn) > parseLsn(found.lsn))) found = p;
  }
  return found;
}

async function scanBackwards(
  conn: KafkaConnection,
  topic: string,
  partition: number,
  low: number,
  end: number,
  slot: string,
): Promise<CdcPosition | null> {
  let stop = end;
  let width = WINDOW;
  while (stop > low) {
    const start = Math.max(low, stop - width);
    const value = await lastValueInRange(conn, topic, partition, start, stop, slot);
    if (value !== undefined) return parsePosition(value);
    stop = start;
    width *= 8;
  }
  return null;
}

/** The value of the last record with key `slot` in [start, end) (undefined: none). */
async function lastValueInRange(
  conn: KafkaConnection,
  topic: string,
  partition: number,
  start: number,
  end: number,
  slot: string,
): Promise<Buffer | null | undefined> {
  const consumer = new RdKafka.KafkaConsumer(
    {
      'group.id': `engage-cdc-position-${randomBytes(4).toString('hex')}`,
      ...connectionProps(conn),
      ...consumerFetchProps(conn),
      'enable.auto.commit': false,
      'isolation.level': 'read_committed',
      'enable.partition.eof': true,
      'auto.offset.reset': 'earliest',
    },
    {},
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 10000 }, (err) => (err ? reject(err) : resolve())),
  );
  try {
    let last: Buffer | null | undefined;
    let eof = false;
    consumer.on('partition.eof', (e) => {
      if (e.partition === partition && Number(e.offset) >= end) eof = true;
    });
    consumer.assign([{ topic, partition, offset: start }]);
    const deadline = Date.now() + 30000;
    while (!eof) {
      if (Date.now() > deadline)
        throw new PipelineError('TIMEOUT', `reading ${topic}[${partition}] ${start}..${end} timed out`, {
          retriable: true,
        });
      const batch = await new Promise<RdKafka.Message[]>((resolve, reject) =>
        consumer.consume(500, (err, msgs) => (err ? reject(err) : resolve(msgs))),
      );
      for (const m of batch) {
        if (m.offset >= end) {
          eof = true;
          break;
        }
        if (m.key?.toString() === slot) last = m.value;
      }
    }
    return last;
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

/** Reads before a missing position is believed (about 15 s in all, a fresh client each time). */
const REREAD_ATTEMPTS = 3;
const REREAD_GAP_MS = 5000;

/**
 * Reads the position again, a few times apart, when the first read found none although the slot
 * exists: the CDC then refuses to start for good (docs/cdc.md), so a read a moment after a broker
 * fault must not decide it. Returns the first position found, or null when every read agrees.
 */
export async function rereadPosition(
  read: () => Promise<CdcPosition | null>,
  log: Logger,
  signal?: AbortSignal,
): Promise<CdcPosition | null> {
  for (let attempt = 1; attempt <= REREAD_ATTEMPTS; attempt++) {
    await sleep(REREAD_GAP_MS, signal);
    const position = await read();
    log.warn(
      { attempt, found: position !== null },
      'the slot exists but no position was read: reading the position topic again before refusing',
    );
    if (position !== null) return position;
  }
  return null;
}
