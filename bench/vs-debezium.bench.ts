import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../src/config/load.js';
import { readStackState } from '../src/config/stack-state.js';
import { stackRemove, stackUp } from '../src/stack/stack.js';
import type { BenchResult } from './types.js';
import { currentLsn, dropSlot, logAppendTopics, say, sleep, type Ctx } from './vs-debezium/context.js';
import { debeziumTopic } from './vs-debezium/connect-config.js';
import { debeziumJars } from './vs-debezium/jars.js';
import { latencyRun, type LatencyRun } from './vs-debezium/latency.js';
import { report } from './vs-debezium/report.js';
import { kafkaToolRun, recvRun, type ThroughputRun } from './vs-debezium/throughput.js';
import { primeSlot, TOOL_LABEL, type ToolKind, type ToolSetup } from './vs-debezium/tools.js';
import { prefill } from './vs-debezium/workload.js';
import { formatPiiKeys } from '../src/config/pii-keys.js';

/**
 * `npm run bench -- vs-debezium`: engage cdc beside Debezium's PostgreSQL connector and the ceiling
 * pg_recvlogical, on a private stack of its own (STACK_PORT_OFFSET 750, a temporary STACK_DIR; the
 * broker and PostgreSQL are shared by every tool), each tool on its own slot over the same WAL.
 *  1. rounds (BENCH_VS_DEBEZIUM_ROUNDS, 2): a slot per tool, then BENCH_VS_DEBEZIUM_ROWS (500,000)
 *     rows in BENCH_VS_DEBEZIUM_TXNS (500) transactions while no tool runs, then each tool in turn
 *     over that backlog, the order reversed every other round (interleaved);
 *  2. latency at 1,000 rows/s for BENCH_VS_DEBEZIUM_LATENCY_SECONDS (60) per run after
 *     BENCH_VS_DEBEZIUM_LATENCY_WARMUP_SECONDS (10) of the same load not counted, the tools in the
 *     order of BENCH_VS_DEBEZIUM_LATENCY (engage,dbz,dbz-eos,engage,dbz).
 * BENCH_VS_DEBEZIUM_TOOLS (recv,engage,dbz,dbz-eos) chooses the throughput tools. Debezium 3.6.1
 * and Kafka Connect 4.3.0 come from Maven Central (bench/vs-debezium/pom.xml, resolved once).
 * Prints every run, each tool's mean and the ratios of issue #32's targets; the raw runs go to
 * bench-output/vs-debezium.json. The stack and every tool are stopped at the end, or on SIGINT.
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const envNum = (k: string, d: number) => Number(process.env[k] ?? d);
const list = (k: string, d: string) =>
  (process.env[k] ?? d)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const OFFSET = envNum('BENCH_VS_DEBEZIUM_PORT_OFFSET', 750);
const ROUNDS = envNum('BENCH_VS_DEBEZIUM_ROUNDS', 2);
const TOOLS = list('BENCH_VS_DEBEZIUM_TOOLS', 'recv,engage,dbz,dbz-eos') as Array<ToolKind | 'recv'>;
const LATENCY = list('BENCH_VS_DEBEZIUM_LATENCY', 'engage,dbz,dbz-eos,engage,dbz') as ToolKind[];

function versions(c: Ctx, pgVersion: string, jars: { connect: string; debezium: string } | null): string {
  const sh = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch (e) {
      return (e as { stderr?: string }).stderr?.split('\n')[0] ?? '?';
    }
  };
  const java = sh('sh', ['-c', 'java -version 2>&1 | head -1']);
  const commit = sh('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no', 'src', 'bin'])
    ? ' (src or bin modified)'
    : '';
  return [
    `engage ${commit}${dirty}; PostgreSQL ${pgVersion}; ${java}; node ${process.version}`,
    jars ? `Debezium ${jars.debezium}, Kafka Connect ${jars.connect}` : 'Debezium not run',
    `backlog ${c.rows.toLocaleString('en-US')} rows in ${c.txns} transactions, ${ROUNDS} round(s) of ${TOOLS.join(
      ', ',
    )}; latency ${c.latencySeconds} s each after ${c.latencyWarmupSeconds} s of warm-up: ${LATENCY.join(', ')}`,
  ].join('\n   ');
}

async function round(c: Ctx, r: number, out: ThroughputRun[]): Promise<void> {
  const order = r % 2 === 1 ? TOOLS : [...TOOLS].reverse();
  const runOf = (t: ToolKind | 'recv') => {
    const name = `${t.replace('-', '')}-r${r}`;
    return {
      name,
      slot: `${t.replace('-', '_')}_r${r}`,
      topic: t === 'engage' ? `bench-${name}` : debeziumTopic(name),
    };
  };
  await logAppendTopics(
    c.config,
    order.filter((t) => t !== 'recv').map((t) => runOf(t).topic),
  );
  // engage cdc first: priming commits a catalogue change, which the other slots need not decode.
  for (const t of [...order].sort((a, b) => Number(b === 'engage') - Number(a === 'engage')))
    await primeSlot(c.setup, c.db, t, runOf(t));
  const t0 = Date.now();
  await prefill(c.db, c.rows, c.txns);
  const end = await currentLsn(c.db);
  say(`round ${r}: ${c.rows} rows committed in ${((Date.now() - t0) / 1000).toFixed(1)} s (to ${end})`);
  for (const t of order) {
    const run = runOf(t);
    say(`round ${r}: ${TOOL_LABEL[t]}`);
    const res = t === 'recv' ? await recvRun(c, r, run.slot, end) : await kafkaToolRun(c, t, r, run);
    say(`  ${res.ok ? `${Math.round(res.rowsPerS)} rows/s` : `FAILED: ${res.why.slice(0, 300)}`}`);
    out.push(res);
    await dropSlot(c.db, run.slot);
    await sleep(2000);
  }
}

export async function run(): Promise<BenchResult[]> {
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'engage-bench-vsdbz-stack-'));
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'engage-bench-vsdbz-'));
  const env: NodeJS.ProcessEnv = { ...process.env, STACK_DIR: stackDir, STACK_PORT_OFFSET: String(OFFSET) };
  for (const k of ['DATABASE_URL', 'KAFKA_BOOTSTRAP_SERVERS', 'REDIS_URL']) delete env[k];
  const base = loadConfig(env);
  const needsDebezium = [...TOOLS, ...LATENCY].some((t) => t.startsWith('dbz'));
  say(needsDebezium ? 'resolving Debezium and Kafka Connect (Maven, cached)' : 'no Debezium run asked for');
  const jars = needsDebezium ? await debeziumJars(repoRoot) : null;
  let db: pg.Client | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await db?.end().catch(() => undefined);
      await stackRemove(base);
      if (!process.env.BENCH_VS_DEBEZIUM_KEEP) rmSync(workDir, { recursive: true, force: true });
    })());
  const interrupted = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  try {
    say(`private stack up (offset ${OFFSET}, ${stackDir})`);
    await stackUp(base);
    const config = loadConfig(env);
    const pgUrl = new URL(config.databaseUrl);
    const setup: ToolSetup = {
      repoRoot,
      engageEnv: {
        ...env,
        DATABASE_URL: config.databaseUrl,
        KAFKA_BOOTSTRAP_SERVERS: config.kafkaBrokers.join(','),
        REDIS_URL: config.redisUrl,
        // DATABASE_URL set: the private stack's development pseudonym key is passed on (docs/security.md);
        // engage cdc pseudonymises user_id as shipped, Debezium carries it raw.
        PII_KEYS: env.PII_KEYS ?? formatPiiKeys(config.piiKeys),
      },
      connect: jars && {
        kafka: config.kafkaBrokers.join(','),
        pgHost: pgUrl.hostname,
        pgPort: Number(pgUrl.port || 5432),
        pgDatabase: pgUrl.pathname.slice(1),
        publication: config.CDC_PUBLICATION_NAME,
        pluginPath: jars.pluginPath,
        classpath: jars.classpath,
        restPort: 28083 + OFFSET,
      },
    };
    db = new pg.Client({ connectionString: config.databaseUrl });
    await db.connect();
    const c: Ctx = {
      config,
      db,
      setup,
      brokerPid: readStackState(stackDir)?.services.kafka?.pid,
      workDir,
      rows: envNum('BENCH_VS_DEBEZIUM_ROWS', 500_000),
      txns: envNum('BENCH_VS_DEBEZIUM_TXNS', 500),
      latencySeconds: envNum('BENCH_VS_DEBEZIUM_LATENCY_SECONDS', 60),
      latencyWarmupSeconds: envNum('BENCH_VS_DEBEZIUM_LATENCY_WARMUP_SECONDS', 10),
    };
    const pgVersion =
      (await db.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';
    const about = versions(c, pgVersion, jars?.versions ?? null);
    console.log(`   ${about}`);
    const runs: ThroughputRun[] = [];
    for (let r = 1; r <= ROUNDS; r++) await round(c, r, runs);
    const lat: LatencyRun[] = [];
    for (const [i, kind] of LATENCY.entries()) {
      say(`latency ${i + 1}/${LATENCY.length}: ${TOOL_LABEL[kind]}, ${c.latencySeconds} s at 1,000 rows/s`);
      const res = await latencyRun(c, kind, i + 1);
      say(`  ${res.ok ? `p50 ${res.p50} ms, p99 ${res.p99} ms` : `FAILED: ${res.why.slice(0, 300)}`}`);
      lat.push(res);
    }
    const out = path.join(repoRoot, 'bench-output');
    mkdirSync(out, { recursive: true });
    writeFileSync(
      path.join(out, 'vs-debezium.json'),
      `${JSON.stringify({ about, date: new Date().toISOString(), runs, latency: lat }, null, 1)}\n`,
    );
    return report(runs, lat);
  } finally {
    process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
    await cleanup();
  }
}
