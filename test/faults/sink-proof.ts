import type { Config } from '../../src/config/load.js';
import type { RunningReceiver } from '../../src/receiver/index.js';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import { committedOffsets } from '../processor/kafka-helpers.js';
import { readDlq, readRedisWindow, stableOffsets, warehouseKeys, type ParkedEntry } from '../e2e/sink-reads.js';
import { sleep } from '../helpers/wait.js';
import type { ExpectedEvents } from './expected-events.js';

/**
 * After a fault: wait, with a deadline, until every sink holds every expected event, then count
 * from each sink what was lost, duplicated or parked. Called while nothing writes to PostgreSQL
 * (the matrix stops its generator), so "expected" is exactly what PostgreSQL committed.
 *
 * - Redis: the window's count and its dedupe ledgers (one MULTI): lost = expected keys absent from
 *   the ledgers, duplicated = count − ledger members (an event counted twice).
 * - Warehouse (DuckDB): every row's key, read with the warehouse sink stopped (SIGTERM: it drains
 *   and commits first) and started again right after: DuckDB lets no other process open the file
 *   while the sink holds it. Before the stop, its group must have committed up to the enriched
 *   topic's last stable offsets. Lost = expected keys absent; duplicated = rows − distinct keys.
 * - External: the reference receiver's distinct event keys; duplicated = an event counted twice
 *   (0 by its dedupe), re-sent deliveries it absorbed are reported beside.
 * - DLQ: every entry, judged by the parked event's key against the rows inserted as bad.
 */

export interface SinkCounts {
  lost: number;
  duplicated: number;
  /** Events in the sink that PostgreSQL never held (or bad rows that should have been parked). */
  unknown: number;
}

export interface SinkProof {
  expected: number;
  redisExpected: number;
  redis: SinkCounts;
  warehouse: SinkCounts & { rows: number };
  external: SinkCounts & { resent: number };
  dlq: { entries: number; badFound: number; unexpected: string[] };
  /** Seconds from the stop of the load until every sink had caught up. */
  caughtUpSeconds: number;
  parked: ParkedEntry[];
}

/** A sink that did not catch up by the deadline: `component` is the one whose sink is behind. */
export class NotCaughtUp extends Error {
  constructor(
    message: string,
    readonly component: string,
  ) {
    super(message);
  }
}

/** Polls `behind()` (what is still missing, '' when nothing) until it is empty; throws NotCaughtUp at the deadline naming it. */
async function until(
  what: string,
  component: string,
  behind: () => Promise<string>,
  deadlineMs: number,
  log: (l: string) => void,
): Promise<void> {
  const t0 = Date.now();
  let lastLog = t0;
  for (;;) {
    const missing = await behind().catch(
      (err: unknown) => `${what}: ${err instanceof Error ? err.message : String(err)}`,
    );
    if (missing === '') return;
    if (Date.now() - t0 > deadlineMs)
      throw new NotCaughtUp(`${what}: not reached within ${deadlineMs / 1000} s; still ${missing}`, component);
    if (Date.now() - lastLog >= 15000) {
      log(`  waiting for ${what}: ${missing}`);
      lastLog = Date.now();
    }
    await sleep(1000);
  }
}

export interface ProofContext {
  config: Config;
  sup: Supervisor;
  receiver: RunningReceiver;
  expected: ExpectedEvents;
  log: (line: string) => void;
  /** Per wait: how long the sinks may take to catch up. */
  deadlineMs: number;
  /** Runs while the warehouse sink is stopped (its DuckDB file free to read). */
  whileWarehouseStopped?: () => Promise<void>;
}

export async function waitAndProve(ctx: ProofContext): Promise<SinkProof> {
  const { config, receiver, expected, log } = ctx;
  const t0 = Date.now();
  const valid = expected.valid();
  const inRedis = expected.inRedis();
  await until(
    'the external receiver to hold every event',
    'sink-external',
    async () => {
      const missing = valid.filter((k) => receiver.event(k) === undefined).length;
      return missing === 0 ? '' : `${missing} of ${valid.length} missing`;
    },
    ctx.deadlineMs,
    log,
  );
  await until(
    'Redis to hold every event in its window',
    'sink-redis',
    async () => {
      const w = await readRedisWindow(config);
      const missing = inRedis.filter((k) => !w.keys.has(k)).length;
      return missing === 0 ? '' : `${missing} of ${inRedis.length} missing (window count ${w.total})`;
    },
    ctx.deadlineMs,
    log,
  );
  // Redis holds every event, so the enriched topic does: the warehouse group must pass its end.
  const group = `engage-sink-warehouse.${config.KAFKA_CLIENT_ID}`;
  const end = await stableOffsets(config);
  await until(
    `the warehouse sink's group ${group} to commit up to the enriched topic's end`,
    'sink-warehouse',
    async () => {
      const committed = await committedOffsets(config, group, config.KAFKA_TOPIC_ENRICHED);
      const short = [...end]
        .filter(([p, off]) => (committed.get(p) ?? -1) < off)
        .map(([p, off]) => `p${p} ${committed.get(p) ?? -1}/${off}`);
      return short.join(', ');
    },
    ctx.deadlineMs,
    log,
  );
  const caughtUpSeconds = (Date.now() - t0) / 1000;
  const warehouse = ctx.sup.child('sink-warehouse');
  if (!warehouse) throw new Error('no sink-warehouse component');
  await warehouse.stop();
  let whKeys: string[];
  try {
    whKeys = await warehouseKeys(config.DUCKDB_PATH);
    await ctx.whileWarehouseStopped?.();
  } finally {
    warehouse.start();
  }
  const redis = await readRedisWindow(config);
  const parked = await readDlq(config);
  return {
    expected: valid.length,
    redisExpected: inRedis.length,
    redis: {
      lost: inRedis.filter((k) => !redis.keys.has(k)).length,
      duplicated: redis.total - redis.keys.size,
      unknown: countUnknown(redis.keys, expected),
    },
    warehouse: { ...countRows(whKeys, valid, expected), rows: whKeys.length },
    external: {
      lost: valid.filter((k) => receiver.event(k) === undefined).length,
      duplicated: receiver.stats().events_unique - receiver.eventKeys().length,
      unknown: countUnknown(receiver.eventKeys(), expected),
      resent: receiver.stats().events_duplicate,
    },
    dlq: judgeDlq(parked, expected),
    caughtUpSeconds,
    parked,
  };
}

function countUnknown(keys: Iterable<string>, expected: ExpectedEvents): number {
  let n = 0;
  for (const k of keys) if (!expected.has(k) || expected.isBad(k)) n++;
  return n;
}

function countRows(rows: string[], valid: string[], expected: ExpectedEvents): SinkCounts {
  const distinct = new Set(rows);
  return {
    lost: valid.filter((k) => !distinct.has(k)).length,
    duplicated: rows.length - distinct.size,
    unknown: countUnknown(distinct, expected),
  };
}

function judgeDlq(parked: ParkedEntry[], expected: ExpectedEvents): SinkProof['dlq'] {
  const badFound = new Set<string>();
  const unexpected: string[] = [];
  for (const p of parked) {
    if (p.key !== null && expected.isBad(p.key)) badFound.add(p.key);
    else unexpected.push(`${p.entry.stage} ${p.entry.code} event ${p.key ?? p.id}: ${p.entry.reason.slice(0, 200)}`);
  }
  return { entries: parked.length, badFound: badFound.size, unexpected };
}
