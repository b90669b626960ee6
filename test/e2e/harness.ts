import type pg from 'pg';
import type { Config } from '../../src/config/load.js';
import { generateBatch } from '../../src/generator/modes.js';
import type { RunningReceiver } from '../../src/receiver/index.js';
import { createRedisReader } from '../../src/sinks/redis/read.js';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import {
  PIPELINE_COMPONENTS,
  PROOF_ENV,
  insertBadRows,
  logTails,
  restartService,
  startPipelineRun,
} from './pipeline-run.js';
import { groupCaughtUp, queryWarehouse, readDlq } from './sink-reads.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * The end-to-end proof (issue 7), shared by the short form in `npm test` and the long one in
 * `npm run test:e2e`. It runs on a stack of its own (STACK_PORT_OFFSET), so restarting its broker
 * and its Redis disturbs no other test. Every component runs as a supervised child process, killed
 * with SIGKILL at random moments; the generator writes to PostgreSQL throughout; then, once quiet,
 * every count is proven from the sinks themselves.
 */

export interface ProofOptions {
  batches: number;
  eventsPerBatch: number;
  /** Pause between generator batches. */
  pauseMs: number;
  /** SIGKILLs of random components, spread over the run. */
  kills: number;
  receiverOutageMs: number;
  seed: number;
  log: (line: string) => void;
}

export interface ProofResult {
  committedRows: number;
  badRows: number;
  expected: number;
  warehouseRows: number;
  warehouseDistinct: number;
  warehouseMissing: number;
  redisWindow: number;
  redisExpected: number;
  receiverUnique: number;
  receiverMaxDeliveries: number;
  receiverMissing: number;
  dlqEntries: number;
  dlqBadRowsFound: number;
  dlqUnexpected: string[];
  kills: string[];
  restarts: Record<string, number>;
}

/** mulberry32: a small seeded PRNG, so a failing run can be repeated with its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The components in a random order: kill i hits order[i % n], so every component gets its turn. */
function killOrder(random: () => number): string[] {
  const order: string[] = [...PIPELINE_COMPONENTS];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] as string, order[i] as string];
  }
  return order;
}

export async function runProof(opts: ProofOptions): Promise<ProofResult> {
  const random = rng(opts.seed);
  const run = await startPipelineRun({
    label: 'e2e',
    // 300, 310, … 390: the fault matrix takes 400–490.
    offsets: { from: 300, to: 390, step: 10 },
    env: PROOF_ENV,
    log: opts.log,
  });
  const { base, config, db, sup, receiver, stackDir } = run;
  const kills: string[] = [];
  let proven = false;
  try {
    sup.start();
    const badIds = await runLoad(base, config, db, sup, receiver, opts, random, kills, stackDir);
    opts.log('e2e: load done; waiting until quiet');
    try {
      await waitQuiet(config, db, receiver, badIds, opts.log);
    } catch (err) {
      // The test output is what a CI run keeps: put each component's last warnings in it.
      opts.log(logTails(run.logsDir));
      throw err;
    }
    await sup.stop();
    const result = await prove(config, db, receiver, badIds, kills, sup);
    proven = exact(result);
    return result;
  } finally {
    // The run's logs and DuckDB file stay for a look unless every count came out exact.
    await run.close(proven);
  }
}

async function runLoad(
  base: Config,
  config: Config,
  db: pg.Client,
  sup: Supervisor,
  receiver: RunningReceiver,
  opts: ProofOptions,
  random: () => number,
  kills: string[],
  stackDir: string,
): Promise<Set<string>> {
  const killAt = new Set(
    Array.from({ length: opts.kills }, (_, i) => Math.floor(((i + 1) * opts.batches) / (opts.kills + 1))),
  );
  const brokerAt = Math.floor(opts.batches / 3);
  const redisAt = Math.floor((2 * opts.batches) / 3);
  const outageAt = Math.floor(opts.batches / 2);
  const badIds = new Set<string>();
  const order = killOrder(random);
  for (let b = 0; b < opts.batches; b++) {
    await generateBatch(config, { batchSize: opts.eventsPerBatch, seed: opts.seed + b, windowMinutes: 2 });
    if (b === Math.floor(opts.batches / 4)) for (const row of await insertBadRows(db)) badIds.add(row.id);
    if (killAt.has(b)) {
      const victim = order[kills.length % order.length] ?? 'processor';
      // At a random moment inside the batch's pause, not right after a generator commit.
      await sleep(Math.floor(random() * opts.pauseMs));
      sup.child(victim)?.kill('SIGKILL');
      kills.push(victim);
      opts.log(`e2e: batch ${b}: SIGKILL ${victim}`);
    }
    if (b === brokerAt) await restartService(base, stackDir, 'kafka', (l) => opts.log(`e2e: ${l}`));
    if (b === redisAt) await restartService(base, stackDir, 'redis', (l) => opts.log(`e2e: ${l}`));
    if (b === outageAt) {
      receiver.control({ down: true });
      opts.log(`e2e: batch ${b}: external receiver down for ${opts.receiverOutageMs} ms`);
      setTimeout(() => receiver.control({ down: false }), opts.receiverOutageMs).unref();
    }
    // The load's pacing: batches arrive spread over time, so kills and outages land mid-stream.
    await sleep(opts.pauseMs);
  }
  return badIds;
}

/**
 * Every count as the proof requires it (the tests assert each one; this only decides whether logs
 * are kept). An event POSTed twice (a sink killed between its POST and its offset commit) is
 * allowed: the receiver dedupes it, and `receiverUnique` is what counts.
 */
function exact(r: ProofResult): boolean {
  return (
    r.committedRows === r.expected + r.badRows &&
    r.warehouseMissing === 0 &&
    r.warehouseRows === r.expected &&
    r.warehouseDistinct === r.expected &&
    r.receiverMissing === 0 &&
    r.receiverUnique === r.expected &&
    r.redisWindow === r.redisExpected &&
    r.dlqUnexpected.length === 0 &&
    r.dlqBadRowsFound === r.badRows
  );
}

async function expectedIds(db: pg.Client, bad: Set<string>): Promise<Set<string>> {
  const res = await db.query<{ id: string }>('SELECT id::text AS id FROM engagement_events');
  return new Set(res.rows.map((r) => r.id).filter((id) => !bad.has(id)));
}

/** Waits until the receiver and Redis hold every valid event and the warehouse group has caught up. */
async function waitQuiet(
  config: Config,
  db: pg.Client,
  receiver: RunningReceiver,
  bad: Set<string>,
  log: (l: string) => void,
): Promise<void> {
  const want = (await expectedIds(db, bad)).size;
  const { reader, close } = await createRedisReader(config);
  let behind: string[] = [];
  let polls = 0;
  try {
    await waitFor(
      'every sink to catch up',
      async () => {
        const got = receiver.stats().events_unique;
        const win = await reader.windowCount().catch(() => -1);
        const wh = await groupCaughtUp(config, `engage-sink-warehouse.${config.KAFKA_CLIENT_ID}`);
        behind = [
          got < want ? `sink-external (receiver ${got}/${want})` : '',
          win < want ? `sink-redis (window ${win}/${want})` : '',
          wh ? '' : 'sink-warehouse (group not caught up)',
        ].filter(Boolean);
        if (behind.length > 0 && polls++ % 10 === 0) log(`e2e: waiting for ${behind.join(', ')}`);
        return behind.length === 0;
      },
      { timeoutMs: 300_000, everyMs: 1000, describe: () => ({ behind }) },
    );
  } finally {
    await close();
  }
}

async function prove(
  config: Config,
  db: pg.Client,
  receiver: RunningReceiver,
  bad: Set<string>,
  kills: string[],
  sup: Supervisor,
): Promise<ProofResult> {
  const want = await expectedIds(db, bad);
  const committedRows = Number(
    (await db.query<{ n: string }>('SELECT count(*)::text AS n FROM engagement_events')).rows[0]?.n,
  );

  const rows = (await queryWarehouse(config.DUCKDB_PATH, 'SELECT event_id FROM engagement_events_enriched')).map((r) =>
    String(r.event_id),
  );
  const warehouseIds = new Set(rows);

  const { reader, close } = await createRedisReader(config);
  const redisWindow = await reader.windowCount();
  await close();

  const receiverIds = new Set(receiver.eventIds());
  const receiverMaxDeliveries = Math.max(0, ...[...receiverIds].map((id) => receiver.event(id)?.deliveries ?? 0));

  const dlq = await readDlq(config);
  const dlqIds = dlq.map((d) => d.id);
  return {
    committedRows,
    badRows: bad.size,
    expected: want.size,
    warehouseRows: rows.length,
    warehouseDistinct: warehouseIds.size,
    warehouseMissing:
      [...want].filter((id) => !warehouseIds.has(id)).length + [...warehouseIds].filter((id) => !want.has(id)).length,
    redisWindow,
    redisExpected: want.size,
    receiverUnique: receiverIds.size,
    receiverMaxDeliveries,
    receiverMissing:
      [...want].filter((id) => !receiverIds.has(id)).length + [...receiverIds].filter((id) => !want.has(id)).length,
    dlqEntries: dlq.length,
    dlqBadRowsFound: new Set(dlqIds.filter((id) => bad.has(id))).size,
    dlqUnexpected: dlq
      .filter((_, i) => !bad.has(dlqIds[i] ?? ''))
      .map(({ entry: d }) => `${d.stage} ${d.code} ${d.reason}`),
    kills,
    restarts: Object.fromEntries(sup.status().map((s) => [s.name, s.restarts])),
  };
}
