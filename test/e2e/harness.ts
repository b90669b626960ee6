import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { loadConfig, privatePorts, type Config } from '../../src/config/load.js';
import type { DlqEntry } from '../../src/core/types.js';
import { generateBatch } from '../../src/generator/modes.js';
import { startReceiver, type RunningReceiver } from '../../src/receiver/index.js';
import { createRedisReader } from '../../src/sinks/redis/read.js';
import { stopPid, tcpOpen } from '../../src/stack/process.js';
import { readStackState } from '../../src/config/stack-state.js';
import { stackRemove, stackUp } from '../../src/stack/stack.js';
import { Supervisor, componentSpecs } from '../../src/supervisor/supervisor.js';
import { committedOffsets, parseValues, readTopic } from '../processor/kafka-helpers.js';

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

const COMPONENTS = ['cdc', 'processor', 'sink-redis', 'sink-warehouse', 'sink-external'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  const order = [...COMPONENTS];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] as string, order[i] as string];
  }
  return order;
}

/**
 * A port offset (300, 310, … 390) whose private ports nobody answers on, so two proofs at once (the
 * short one in `npm test` and `npm run test:e2e`) never share a broker or consumer groups.
 */
async function freeOffset(): Promise<number> {
  for (let offset = 300; offset < 400; offset += 10) {
    const ports = Object.values(privatePorts(offset));
    const used = await Promise.all(ports.map((p) => tcpOpen('127.0.0.1', p, 300)));
    if (!used.some(Boolean)) return offset;
  }
  throw new Error('e2e: no free stack port offset between 300 and 390');
}

export async function runProof(opts: ProofOptions): Promise<ProofResult> {
  const random = rng(opts.seed);
  const offset = await freeOffset();
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'engage-e2e-stack-'));
  const work = mkdtempSync(path.join(os.tmpdir(), 'engage-e2e-'));
  const env: NodeJS.ProcessEnv = {
    STACK_DIR: stackDir,
    STACK_PORT_OFFSET: String(offset),
    DUCKDB_PATH: path.join(work, 'warehouse.duckdb'),
    KAFKA_TOPIC_PARTITIONS: '3',
    // Info: each component's log (in the run's logs folder) then shows assignments and revocations.
    LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'info',
    PROCESSOR_SESSION_TIMEOUT_MS: '6000',
    WAREHOUSE_FLUSH_SECONDS: '1',
    BATCH_SIZE: '2000',
  };
  const base = loadConfig({ ...env });
  try {
    await stackUp(base);
  } catch (err) {
    await stackRemove(base);
    throw err;
  }
  const receiver = await startReceiver({ port: 0 });
  const childEnv: NodeJS.ProcessEnv = {
    ...env,
    DATABASE_URL: base.databaseUrl,
    KAFKA_BOOTSTRAP_SERVERS: base.kafkaBrokers.join(','),
    REDIS_URL: base.redisUrl,
    EXTERNAL_API_URL: receiver.url,
  };
  const config = loadConfig(childEnv);
  const specs = componentSpecs(config, { generator: false, rate: 0, receiver: false, api: false, sinks: ['redis', 'warehouse', 'external'] });
  const sup = new Supervisor(specs, path.join(work, 'logs'), childEnv);
  const db = new pg.Client({ connectionString: config.databaseUrl });
  await db.connect();
  const kills: string[] = [];
  let proven = false;
  try {
    sup.start();
    opts.log(`e2e: stack on offset ${offset}, ${specs.length} components, logs in ${path.join(work, 'logs')}`);
    const badIds = await runLoad(base, config, db, sup, receiver, opts, random, kills, stackDir);
    opts.log('e2e: load done; waiting until quiet');
    try {
      await waitQuiet(config, db, receiver, badIds, opts.log);
    } catch (err) {
      // The test output is what a CI run keeps: put each component's last warnings in it.
      opts.log(logTails(path.join(work, 'logs')));
      throw err;
    }
    await sup.stop();
    const result = await prove(config, db, receiver, badIds, kills, sup);
    proven = exact(result);
    return result;
  } finally {
    await sup.stop().catch(() => undefined);
    await receiver.close().catch(() => undefined);
    await db.end().catch(() => undefined);
    await stackRemove(base);
    // The run's logs and DuckDB file stay for a look unless every count came out exact.
    if (proven) rmSync(work, { recursive: true, force: true });
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
  const killAt = new Set(Array.from({ length: opts.kills }, (_, i) => Math.floor(((i + 1) * opts.batches) / (opts.kills + 1))));
  const brokerAt = Math.floor(opts.batches / 3);
  const redisAt = Math.floor((2 * opts.batches) / 3);
  const outageAt = Math.floor(opts.batches / 2);
  const badIds = new Set<string>();
  const order = killOrder(random);
  for (let b = 0; b < opts.batches; b++) {
    await generateBatch(config, { batchSize: opts.eventsPerBatch, seed: opts.seed + b, windowMinutes: 2 });
    if (b === Math.floor(opts.batches / 4)) for (const id of await insertBadRows(db)) badIds.add(id);
    if (killAt.has(b)) {
      const victim = order[kills.length % order.length] ?? 'processor';
      // At a random moment inside the batch's pause, not right after a generator commit.
      await sleep(Math.floor(random() * opts.pauseMs));
      sup.child(victim)?.kill('SIGKILL');
      kills.push(victim);
      opts.log(`e2e: batch ${b}: SIGKILL ${victim}`);
    }
    if (b === brokerAt) await restartService(base, stackDir, 'kafka', opts.log);
    if (b === redisAt) await restartService(base, stackDir, 'redis', opts.log);
    if (b === outageAt) {
      receiver.control({ down: true });
      opts.log(`e2e: batch ${b}: external receiver down for ${opts.receiverOutageMs} ms`);
      setTimeout(() => receiver.control({ down: false }), opts.receiverOutageMs).unref();
    }
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
    r.committedRows === r.expected + r.badRows && r.warehouseMissing === 0 && r.warehouseRows === r.expected && r.warehouseDistinct === r.expected &&
    r.receiverMissing === 0 && r.receiverUnique === r.expected && r.redisWindow === r.redisExpected && r.dlqUnexpected.length === 0 && r.dlqBadRowsFound === r.badRows
  );
}

/** Rows every stage must refuse, each for a documented reason; returns their ids. */
async function insertBadRows(db: pg.Client): Promise<string[]> {
  const c = await db.query<{ id: string }>('SELECT id FROM content LIMIT 1');
  const contentId = c.rows[0]?.id;
  const res = await db.query<{ id: string }>(
    `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload) VALUES
      (NULL, gen_random_uuid(), 'play', now(), 1000, 'web', '{"bad":"null content"}'),
      ($1, gen_random_uuid(), 'pause', now(), -50, 'web', '{"bad":"negative duration"}'),
      ($1, gen_random_uuid(), 'play', now() + interval '30 days', 1000, 'web', '{"bad":"future"}'),
      ($1, gen_random_uuid(), 'play', '1999-12-31T00:00:00Z', 1000, 'web', '{"bad":"before 2000"}')
     RETURNING id::text AS id`,
    [contentId],
  );
  return res.rows.map((r) => r.id);
}

async function restartService(config: Config, stackDir: string, name: 'kafka' | 'redis', log: (l: string) => void): Promise<void> {
  const pid = readStackState(stackDir)?.services[name]?.pid;
  if (!pid) throw new Error(`e2e: no pid for ${name}`);
  const t0 = Date.now();
  await stopPid(pid, 30000);
  await stackUp(config, { topics: false });
  log(`e2e: ${name} restarted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

async function expectedIds(db: pg.Client, bad: Set<string>): Promise<Set<string>> {
  const res = await db.query<{ id: string }>('SELECT id::text AS id FROM engagement_events');
  return new Set(res.rows.map((r) => r.id).filter((id) => !bad.has(id)));
}

/** Waits until the receiver and Redis hold every valid event and the warehouse group has caught up. */
async function waitQuiet(config: Config, db: pg.Client, receiver: RunningReceiver, bad: Set<string>, log: (l: string) => void): Promise<void> {
  const want = (await expectedIds(db, bad)).size;
  const { reader, close } = await createRedisReader(config);
  const deadline = Date.now() + 300_000;
  try {
    for (let i = 0; ; i++) {
      const got = receiver.stats().events_unique;
      const win = await reader.windowCount().catch(() => -1);
      const wh = await groupCaughtUp(config, `engage-sink-warehouse.${config.KAFKA_CLIENT_ID}`);
      if (got >= want && win >= want && wh) return;
      const behind = [got < want ? `sink-external (receiver ${got}/${want})` : '', win < want ? `sink-redis (window ${win}/${want})` : '', wh ? '' : 'sink-warehouse (group not caught up)'].filter(Boolean);
      if (i % 10 === 0) log(`e2e: waiting for ${behind.join(', ')}`);
      if (Date.now() > deadline) throw new Error(`e2e: not quiet after 300 s; still behind: ${behind.join(', ')}`);
      await sleep(1000);
    }
  } finally {
    await close();
  }
}

/** The last warn/error lines of every component log (pino JSON, level ≥ 40), for a failure report. */
function logTails(dir: string, lines = 15): string {
  const out: string[] = [`e2e: component logs in ${dir}; last warnings and errors:`];
  for (const name of COMPONENTS) {
    let text = '';
    try {
      text = readFileSync(path.join(dir, `${name}.log`), 'utf8');
    } catch {
      out.push(`--- ${name}: no log`);
      continue;
    }
    const warn = text.split('\n').filter((l) => /"level":(4|5|6)0/.test(l));
    out.push(`--- ${name}: ${warn.length} warn/error lines, last ${Math.min(lines, warn.length)}:`, ...warn.slice(-lines).map((l) => l.slice(0, 600)));
  }
  return out.join('\n');
}

export async function groupCaughtUp(config: Config, groupId: string): Promise<boolean> {
  const last = new Map<number, number>();
  for (const m of await readTopic(config.kafkaBrokers, config.KAFKA_TOPIC_ENRICHED, 60000)) last.set(m.partition, Math.max(last.get(m.partition) ?? -1, m.offset));
  const committed = await committedOffsets(config, groupId, config.KAFKA_TOPIC_ENRICHED);
  return [...last].every(([p, off]) => (committed.get(p) ?? -1) >= off + 1);
}

async function prove(config: Config, db: pg.Client, receiver: RunningReceiver, bad: Set<string>, kills: string[], sup: Supervisor): Promise<ProofResult> {
  const want = await expectedIds(db, bad);
  const committedRows = Number((await db.query<{ n: string }>('SELECT count(*)::text AS n FROM engagement_events')).rows[0]?.n);

  const duck = await DuckDBInstance.create(config.DUCKDB_PATH, { access_mode: 'READ_ONLY' });
  const conn = await duck.connect();
  const rows = (await conn.runAndReadAll('SELECT event_id FROM engagement_events_enriched')).getRowObjects().map((r) => String(r.event_id));
  conn.closeSync();
  const warehouseIds = new Set(rows);

  const { reader, close } = await createRedisReader(config);
  const redisWindow = await reader.windowCount();
  await close();

  const receiverIds = new Set(receiver.eventIds());
  const receiverMaxDeliveries = Math.max(0, ...[...receiverIds].map((id) => receiver.event(id)?.deliveries ?? 0));

  const dlq = parseValues<DlqEntry>(await readTopic(config.kafkaBrokers, config.KAFKA_TOPIC_DLQ, 60000));
  const dlqIds = dlq.map((d) => {
    try {
      return String((JSON.parse(d.key ?? '{}') as { id?: unknown }).id ?? '');
    } catch {
      return '';
    }
  });
  return {
    committedRows,
    badRows: bad.size,
    expected: want.size,
    warehouseRows: rows.length,
    warehouseDistinct: warehouseIds.size,
    warehouseMissing: [...want].filter((id) => !warehouseIds.has(id)).length + [...warehouseIds].filter((id) => !want.has(id)).length,
    redisWindow,
    redisExpected: want.size,
    receiverUnique: receiverIds.size,
    receiverMaxDeliveries,
    receiverMissing: [...want].filter((id) => !receiverIds.has(id)).length + [...receiverIds].filter((id) => !want.has(id)).length,
    dlqEntries: dlq.length,
    dlqBadRowsFound: new Set(dlqIds.filter((id) => bad.has(id))).size,
    dlqUnexpected: dlq.filter((_, i) => !bad.has(dlqIds[i] ?? '')).map((d) => `${d.stage} ${d.code} ${d.reason}`),
    kills,
    restarts: Object.fromEntries(sup.status().map((s) => [s.name, s.restarts])),
  };
}
