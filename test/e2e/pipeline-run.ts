import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig, privatePorts, type Config } from '../../src/config/load.js';
import { startReceiver, type RunningReceiver } from '../../src/receiver/index.js';
import { stopPid, tcpOpen } from '../../src/stack/process.js';
import { readStackState } from '../../src/config/stack-state.js';
import { stackRemove, stackUp } from '../../src/stack/stack.js';
import { Supervisor, componentSpecs } from '../../src/supervisor/supervisor.js';
import { sleep } from '../helpers/wait.js';
import { formatPiiKeys } from '../../src/config/pii-keys.js';

/**
 * A whole pipeline on a private stack, for the end-to-end proof (harness.ts) and the fault matrix
 * (test/faults): a throwaway STACK_DIR whose services listen at a free STACK_PORT_OFFSET (so
 * restarting its broker or its Redis disturbs no other test and no shared stack), the reference
 * receiver in this process, and every component as a supervised child process, as `engage run`
 * runs them. `close` stops everything and removes the stack; the logs and the DuckDB file stay
 * unless the caller says the run proved exact.
 */

/** The components whose counts every proof checks, upstream first. */
export const PIPELINE_COMPONENTS = ['cdc', 'processor', 'sink-redis', 'sink-warehouse', 'sink-external'] as const;

/** The settings every proof runs its components with. */
export const PROOF_ENV: Readonly<NodeJS.ProcessEnv> = {
  KAFKA_TOPIC_PARTITIONS: '3',
  // Info: each component's log (in the run's logs folder) then shows assignments and revocations.
  LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'info',
  PROCESSOR_SESSION_TIMEOUT_MS: '6000',
  WAREHOUSE_FLUSH_SECONDS: '1',
  BATCH_SIZE: '2000',
};

export interface RunSetup {
  /** Names the temporary folders (`engage-<label>-…`) and prefixes log lines. */
  label: string;
  /** Port offsets tried, `from` to `to` inclusive by `step`: the first whose ports nobody answers on. */
  offsets: { from: number; to: number; step: number };
  /** Settings for the stack and every component, on top of the run's own (STACK_DIR, ports, DUCKDB_PATH). */
  env: NodeJS.ProcessEnv;
  /** Run the generator as a supervised component too, at this rate (events/s). */
  generatorRate?: number;
  log: (line: string) => void;
}

export interface PipelineRun {
  /** The stack's own configuration (its services private, as `restartService` needs). */
  base: Config;
  /** The components' configuration (the stack's services as given URLs, the receiver's URL). */
  config: Config;
  /** The environment every component gets; STACK_DIR marks the run's processes. */
  childEnv: NodeJS.ProcessEnv;
  stackDir: string;
  offset: number;
  /** Holds the logs folder and the DuckDB file. */
  work: string;
  logsDir: string;
  sup: Supervisor;
  receiver: RunningReceiver;
  db: pg.Client;
  /** Stops the components, the receiver and the stack; removes the work folder when `proven`. */
  close(proven: boolean): Promise<void>;
}

/**
 * A port offset in `offsets` whose private ports nobody answers on, so two runs at once (the short
 * proof in `npm test` and `npm run test:e2e`, or the fault matrix) never share a broker or groups.
 */
export async function freeOffset(offsets: RunSetup['offsets']): Promise<number> {
  for (let offset = offsets.from; offset <= offsets.to; offset += offsets.step) {
    const ports = Object.values(privatePorts(offset));
    const used = await Promise.all(ports.map((p) => tcpOpen('127.0.0.1', p, 300)));
    if (!used.some(Boolean)) return offset;
  }
  throw new Error(`no free stack port offset between ${offsets.from} and ${offsets.to}`);
}

/** Copies the shared stack's resolved Kafka classpath, when there is one, so no Maven run is needed. */
function reuseKafkaClasspath(stackDir: string): void {
  const shared = path.resolve('.stack', 'kafka');
  if (!existsSync(shared)) return;
  mkdirSync(path.join(stackDir, 'kafka'), { recursive: true });
  for (const f of readdirSync(shared).filter((n) => n.startsWith('classpath-')))
    copyFileSync(path.join(shared, f), path.join(stackDir, 'kafka', f));
}

/** Brings the private stack up and starts the receiver and every component (not yet supervised: call `sup.start()`). */
export async function startPipelineRun(setup: RunSetup): Promise<PipelineRun> {
  const offset = await freeOffset(setup.offsets);
  const stackDir = mkdtempSync(path.join(os.tmpdir(), `engage-${setup.label}-stack-`));
  const work = mkdtempSync(path.join(os.tmpdir(), `engage-${setup.label}-`));
  reuseKafkaClasspath(stackDir);
  const env: NodeJS.ProcessEnv = {
    ...setup.env,
    STACK_DIR: stackDir,
    STACK_PORT_OFFSET: String(offset),
    DUCKDB_PATH: path.join(work, 'warehouse.duckdb'),
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
    // DATABASE_URL set: the stack's development key is passed on explicitly (docs/security.md).
    PII_KEYS: env.PII_KEYS ?? formatPiiKeys(base.piiKeys),
  };
  const config = loadConfig(childEnv);
  const rate = setup.generatorRate ?? 0;
  const specs = componentSpecs(config, {
    generator: rate > 0,
    rate,
    receiver: false,
    api: false,
    sinks: ['redis', 'warehouse', 'external'],
  });
  const logsDir = path.join(work, 'logs');
  const sup = new Supervisor(specs, logsDir, childEnv);
  const db = new pg.Client({ connectionString: config.databaseUrl });
  // A PostgreSQL restart ends this session: the error is the test's to see at its next query.
  db.on('error', () => undefined);
  await db.connect();
  setup.log(`${setup.label}: stack on offset ${offset} (${stackDir}), ${specs.length} components, logs in ${logsDir}`);
  let closing: Promise<void> | undefined;
  const run: PipelineRun = {
    base,
    config,
    childEnv,
    stackDir,
    offset,
    work,
    logsDir,
    sup,
    receiver,
    db,
    close: (proven) =>
      (closing ??= (async () => {
        await sup.stop().catch(() => undefined);
        await receiver.close().catch(() => undefined);
        await run.db.end().catch(() => undefined);
        await stackRemove(base);
        if (proven) rmSync(work, { recursive: true, force: true });
        else setup.log(`${setup.label}: logs and DuckDB file kept in ${work}`);
      })()),
  };
  return run;
}

/** Stops one of the run's services (SIGTERM, SIGKILL after 30 s) and starts it again; returns the seconds it took. */
export async function restartService(
  config: Config,
  stackDir: string,
  name: 'kafka' | 'redis',
  log: (l: string) => void,
  downMs = 0,
): Promise<number> {
  const pid = readStackState(stackDir)?.services[name]?.pid;
  if (!pid) throw new Error(`no pid for ${name} in ${stackDir}/state.json`);
  const t0 = Date.now();
  await stopPid(pid, 30000);
  const stopped = Date.now();
  // The outage itself: how long the service stays away (a fault's duration, not a synchronisation).
  if (downMs > 0) await sleep(downMs);
  const starting = Date.now();
  await stackUp(config, { topics: false });
  const seconds = (Date.now() - t0) / 1000;
  log(
    `${name} restarted in ${seconds.toFixed(1)} s (stopping ${((stopped - t0) / 1000).toFixed(1)} s, starting ${((Date.now() - starting) / 1000).toFixed(1)} s)`,
  );
  return seconds;
}

/** Rows every stage must refuse, each for a documented reason; returns their ids and event times (µs). */
export async function insertBadRows(db: pg.Client): Promise<Array<{ id: string; us: string }>> {
  const c = await db.query<{ id: string }>('SELECT id FROM content LIMIT 1');
  const contentId = c.rows[0]?.id;
  const res = await db.query<{ id: string; us: string }>(
    `INSERT INTO engagement_events (content_id, user_id, event_type, event_ts, duration_ms, device, raw_payload) VALUES
      (NULL, gen_random_uuid(), 'play', now(), 1000, 'web', '{"bad":"null content"}'),
      ($1, gen_random_uuid(), 'pause', now(), -50, 'web', '{"bad":"negative duration"}'),
      ($1, gen_random_uuid(), 'play', now() + interval '30 days', 1000, 'web', '{"bad":"future"}'),
      ($1, gen_random_uuid(), 'play', '1999-12-31T00:00:00Z', 1000, 'web', '{"bad":"before 2000"}')
     RETURNING id::text AS id, (extract(epoch FROM event_ts) * 1000000)::bigint::text AS us`,
    [contentId],
  );
  return res.rows;
}

/** The last warn/error lines of every component log (pino JSON, level ≥ 40) and supervisor notes, for a failure report. */
export function logTails(dir: string, lines = 15, names: readonly string[] = PIPELINE_COMPONENTS): string {
  const out: string[] = [`component logs in ${dir}; last warnings and errors:`];
  for (const name of names) {
    let text = '';
    try {
      text = readFileSync(path.join(dir, `${name}.log`), 'utf8');
    } catch {
      out.push(`--- ${name}: no log`);
      continue;
    }
    const warn = text
      .split('\n')
      .filter((l) => /"level":(4|5|6)0/.test(l) || l.startsWith('[supervisor]') || l.startsWith('engage: '));
    out.push(
      `--- ${name}: ${warn.length} warn/error lines, last ${Math.min(lines, warn.length)}:`,
      ...warn.slice(-lines).map((l) => l.slice(0, 600)),
    );
  }
  return out.join('\n');
}
