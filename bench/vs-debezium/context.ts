import { readFileSync } from 'node:fs';
import type pg from 'pg';
import type { Config } from '../../src/config/load.js';
import { createKafka } from '../../src/kafka/client.js';
import type { ToolSetup } from './tools.js';

/**
 * What every run of the vs-debezium bench shares: the private stack's configuration and a client
 * of its database, the tools' set-up, the broker's pid (its CPU is counted per row), a folder for
 * the runs' files, and the sizes. Also the bench's small helpers: topics with LogAppendTime, slots,
 * percentiles, progress lines on stderr.
 *
 * Contract: `logAppendTopics` creates each topic that is missing with the stack's partition count
 * and `message.timestamp.type=LogAppendTime` (a record's timestamp is then when the broker
 * appended it, the same clock for every tool); `createSlot` makes a pgoutput slot at the current
 * WAL position, so a tool started on it later decodes everything committed after this call.
 */

export interface Ctx {
  config: Config;
  db: pg.Client;
  setup: ToolSetup;
  brokerPid: number | undefined;
  workDir: string;
  rows: number;
  txns: number;
  latencySeconds: number;
  latencyWarmupSeconds: number;
}

export async function logAppendTopics(config: Config, topics: string[]): Promise<void> {
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-bench-admin`).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length === 0) return;
    await admin.createTopics({
      topics: missing.map((topic) => ({
        topic,
        numPartitions: config.KAFKA_TOPIC_PARTITIONS,
        replicationFactor: -1,
        configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
      })),
    });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export async function createSlot(db: pg.Client, slot: string): Promise<void> {
  await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
}

/** Drops the slot unless a tool still holds it (it is dropped with the stack anyway). */
export async function dropSlot(db: pg.Client, slot: string): Promise<void> {
  await db
    .query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [
      slot,
    ])
    .catch(() => undefined);
}

export async function currentLsn(db: pg.Client): Promise<string> {
  return (await db.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l ?? '0/0';
}

/** The p-th percentile of ascending-sorted values (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Progress on stderr while the bench runs (the figures are printed at its end). */
export function say(m: string): void {
  process.stderr.write(`   · ${new Date().toISOString().slice(11, 19)} ${m}\n`);
}

/** The process name of a pid (`/proc/<pid>/comm`), '' when it is gone. */
export function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}
