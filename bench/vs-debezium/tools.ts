import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { startCdc } from '../../src/cdc/cdc.js';
import { parseLsn } from '../../src/cdc/lsn.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/core/logger.js';
import { isAlive, spawnDetached, stopPid, tail, waitUntil } from '../../src/stack/process.js';
import { childPids } from '../lib/proc-stats.js';
import { createSlot, currentLsn, sleep } from './context.js';
import {
  connectorProps,
  LOG4J2,
  propertiesText,
  workerProps,
  type ConnectTarget,
  type DebeziumMode,
} from './connect-config.js';

/**
 * Starts and stops the tools the vs-debezium bench compares, each as its own process tree:
 * `engage cdc` through bin/engage.mjs (the command a user runs: the wrapper and the CLI it spawns),
 * Debezium at-least-once in a standalone Kafka Connect JVM, Debezium exactly-once in a one-worker
 * distributed Connect JVM (the connector submitted over REST once the worker is up).
 *
 * Contract: `startTool` returns once the tool has been asked to stream, with `t0` that moment (the
 * launch; for the distributed worker the submission, its start-up given apart in `note`). `pids()`
 * is every process whose CPU is the tool's, `mainPid()` the one whose peak RSS is reported,
 * `failure()` a reason when the tool died or its task failed (null while it runs). `stop()` ends
 * every process of the tool (SIGTERM, SIGKILL after 30 s) and resolves once they are gone.
 * `primeSlot` makes a tool's slot at the current WAL position before its rows are committed: a
 * plain pgoutput slot for the others; for engage cdc, the CDC itself (in this process) creates it
 * and commits a position to Kafka, then stops, as a CDC that was running and is restarted. (A slot
 * made behind its back has no position, and engage cdc re-reads the position topic for 15 s
 * before it streams from such a slot, a safety start-up cost no restart of a real CDC pays.)
 */

export type ToolKind = 'engage' | 'dbz' | 'dbz-eos';

export const TOOL_LABEL: Record<ToolKind | 'recv', string> = {
  recv: 'pg_recvlogical',
  engage: 'engage cdc',
  dbz: 'Debezium at-least-once',
  'dbz-eos': 'Debezium exactly-once',
};

export interface ToolSetup {
  repoRoot: string;
  /** The environment `engage cdc` runs with: the private stack's addresses and STACK_DIR. */
  engageEnv: NodeJS.ProcessEnv;
  /** Null when the Debezium jars were not resolved (no Debezium tool asked for). */
  connect: (ConnectTarget & { classpath: string }) | null;
}

export interface RunningTool {
  kind: ToolKind;
  t0: number;
  note: string;
  log: string;
  pids(): number[];
  mainPid(): number | undefined;
  failure(): Promise<string | null>;
  stop(): Promise<void>;
}

/** Kafka Connect's own launcher defaults (connect-standalone.sh / kafka-run-class.sh). */
const CONNECT_JVM = [
  '-Xms256M',
  '-Xmx2G',
  '-server',
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:InitiatingHeapOccupancyPercent=35',
  '-XX:+ExplicitGCInvokesConcurrent',
  '-XX:MaxInlineLevel=15',
  '-Djava.awt.headless=true',
];

export async function startTool(
  setup: ToolSetup,
  kind: ToolKind,
  run: { name: string; slot: string; topic: string; lingerMs: number; dir: string },
): Promise<RunningTool> {
  mkdirSync(run.dir, { recursive: true });
  const log = path.join(run.dir, 'tool.log');
  if (kind === 'engage') return startEngage(setup, run, log);
  const c = setup.connect;
  if (!c) throw new Error('bench: the Debezium jars were not resolved');
  const mode: DebeziumMode = kind === 'dbz' ? 'at-least-once' : 'exactly-once';
  writeFileSync(path.join(run.dir, 'log4j2.properties'), LOG4J2);
  writeFileSync(
    path.join(run.dir, 'worker.properties'),
    propertiesText(workerProps(c, mode, run.name, run.lingerMs, run.dir)),
  );
  const connector = connectorProps(c, mode, run.name, run.slot);
  writeFileSync(path.join(run.dir, 'connector.properties'), propertiesText(connector));
  const main = mode === 'at-least-once' ? 'ConnectStandalone' : 'ConnectDistributed';
  const args = [
    ...CONNECT_JVM,
    `-Dlog4j2.configurationFile=${path.join(run.dir, 'log4j2.properties')}`,
    '-cp',
    c.classpath,
    `org.apache.kafka.connect.cli.${main}`,
    path.join(run.dir, 'worker.properties'),
    ...(mode === 'at-least-once' ? [path.join(run.dir, 'connector.properties')] : []),
  ];
  const launched = Date.now();
  const pid = spawnDetached('java', args, log);
  const rest = `http://127.0.0.1:${c.restPort}`;
  let t0 = launched;
  let note = '';
  if (mode === 'exactly-once') {
    await waitUntil('the distributed Connect worker', async () => (await fetch(`${rest}/connectors`)).ok, {
      timeoutMs: 300_000,
      log,
      alive: () => isAlive(pid),
    });
    note = `worker ready in ${((Date.now() - launched) / 1000).toFixed(1)} s (not counted)`;
    t0 = Date.now();
    const res = await fetch(`${rest}/connectors/${run.name}/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(connector),
    });
    if (!res.ok) {
      await stopPid(pid, 30_000);
      throw new Error(`bench: Connect refused the connector (${res.status}): ${await res.text()}`);
    }
  }
  return {
    kind,
    t0,
    note,
    log,
    pids: () => [pid],
    mainPid: () => pid,
    failure: async () => {
      if (!isAlive(pid)) return `the Connect JVM exited; its log ends:\n${tail(log)}`;
      const s = await fetch(`${rest}/connectors/${run.name}/status`)
        .then((r) => (r.ok ? (r.json() as Promise<ConnectStatus>) : null))
        .catch(() => null);
      const failed = s?.tasks?.find((t) => t.state === 'FAILED');
      return failed ? `the Debezium task failed: ${(failed.trace ?? '').slice(0, 1500)}` : null;
    },
    stop: () => stopPid(pid, 30_000),
  };
}

export async function primeSlot(
  setup: ToolSetup,
  db: pg.Client,
  kind: ToolKind | 'recv',
  run: { slot: string; topic: string },
): Promise<void> {
  if (kind !== 'engage') return createSlot(db, run.slot);
  const config = loadConfig({ ...engageEnvOf(setup, run), LOG_LEVEL: 'error' });
  const cdc = await startCdc(config, createLogger('error', 'bench-vs-debezium-prime'));
  try {
    // A change of a catalogue row (the content topic; no tool here reads it) makes the CDC commit
    // a position for the slot.
    await db.query('UPDATE content SET title = title WHERE id = (SELECT id FROM content ORDER BY id LIMIT 1)');
    const lsn = parseLsn(await currentLsn(db));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const last = cdc.status().last_lsn;
      if (last !== null && parseLsn(last) >= lsn) break;
      if (Date.now() > deadline) throw new Error('bench: engage cdc did not commit a position within 120 s');
      await sleep(50);
    }
  } finally {
    await cdc.stop();
  }
}

function engageEnvOf(setup: ToolSetup, run: { slot: string; topic: string }): NodeJS.ProcessEnv {
  return {
    ...setup.engageEnv,
    CDC_SLOT_NAME: run.slot,
    CDC_SNAPSHOT_MODE: 'never',
    KAFKA_TOPIC_ENGAGEMENT_EVENTS: run.topic,
    LOG_LEVEL: 'warn',
  };
}

interface ConnectStatus {
  tasks?: Array<{ state: string; trace?: string }>;
}

function startEngage(setup: ToolSetup, run: { slot: string; topic: string }, log: string): RunningTool {
  const t0 = Date.now();
  const env = engageEnvOf(setup, run);
  const wrapper = spawnDetached(process.execPath, [path.join(setup.repoRoot, 'bin', 'engage.mjs'), 'cdc'], log, {
    cwd: setup.repoRoot,
    env,
  });
  let cli: number | undefined;
  const pids = () => {
    cli ??= childPids(wrapper)[0];
    return cli === undefined ? [wrapper] : [wrapper, cli];
  };
  return {
    kind: 'engage',
    t0,
    note: '',
    log,
    pids,
    mainPid: () => pids()[1] ?? wrapper,
    failure: () => Promise.resolve(isAlive(wrapper) ? null : `engage cdc exited; its log ends:\n${tail(log)}`),
    stop: async () => {
      const all = pids();
      await stopPid(wrapper, 30_000);
      for (const p of all) await stopPid(p, 5_000);
    },
  };
}
