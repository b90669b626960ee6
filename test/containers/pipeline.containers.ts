/**
 * `npm run test:containers`, first case: the pipeline run from the image, without Compose (the
 * second case, compose.containers.ts, brings compose.yaml itself up). The Dockerfile is built with
 * podman on a local base (images.ts); a private stack (PostgreSQL, Kafka, Redis: `engage stack`,
 * port offset 700 or the next free one) provides the services, as host processes; every component
 * then runs as a container of the image — the commands compose.yaml gives
 * them, on the host's network — with HEALTH_PORT, and the generator's container writes events at a
 * steady rate. Proven: every component's /health/ready, every event once in each sink (the external
 * receiver's count, the Redis window's ledgers, the DuckDB rows), and each container drained and
 * exited 0 on SIGTERM (`podman stop`). Not part of `npm test` (minutes; podman and debootstrap).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config/load.js';
import { stackRemove, stackUp } from '../../src/stack/stack.js';
import { freeOffset } from '../e2e/pipeline-run.js';
import { readRedisWindow, warehouseKeys } from '../e2e/sink-reads.js';
import { waitFor } from '../helpers/wait.js';
import { buildEngageImage, containerLogs, ENGAGE_IMAGE, ensureBaseImage, podman } from './images.js';

const RATE = Number(process.env.CONTAINERS_RATE ?? 300);
const SECONDS = Number(process.env.CONTAINERS_SECONDS ?? 30);
const log = (line: string) => console.log(`[containers] ${line}`);
const prefix = `engage-ct-${process.pid}`;
const started: string[] = [];
let cleanup: (() => Promise<void>) | undefined;
after(async () => {
  // -v: the image's anonymous /app/data volumes go with the containers.
  if (started.length > 0) podman(['rm', '-f', '-v', ...started]);
  await cleanup?.();
});

/** Polls `check` every 500 ms (a failing check counts as not yet) until it holds. */
const until = (what: string, check: () => Promise<boolean>, ms: number) =>
  waitFor(what, () => check().catch(() => false), { timeoutMs: ms, everyMs: 500 });

const ok = (url: string) => fetch(url).then((r) => r.ok);

test('the pipeline runs from the image, every event once in every sink, every container drains on SIGTERM', async () => {
  ensureBaseImage(log);
  buildEngageImage(log);
  const offset = await freeOffset({ from: 700, to: 780, step: 20 });
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'engage-containers-stack-'));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'engage-containers-data-'));
  chmodSync(dataDir, 0o777); // the image's user (10001) writes DuckDB's file here
  const base = loadConfig({ STACK_DIR: stackDir, STACK_PORT_OFFSET: String(offset), KAFKA_TOPIC_PARTITIONS: '3' });
  cleanup = async () => {
    await stackRemove(base);
    rmSync(dataDir, { recursive: true, force: true });
  };
  await stackUp(base);
  const receiverPort = 28090 + offset;
  const env: Record<string, string> = {
    DATABASE_URL: base.databaseUrl,
    KAFKA_BOOTSTRAP_SERVERS: base.kafkaBrokers.join(','),
    REDIS_URL: base.redisUrl,
    KAFKA_TOPIC_PARTITIONS: '3',
    EXTERNAL_API_URL: `http://127.0.0.1:${receiverPort}/events`,
    HEALTH_HOST: '127.0.0.1',
    // DATABASE_URL set: the stack's development pseudonym key is passed on (docs/security.md).
    PII_KEYS: base.piiKeys.map((k) => `${k.id}:${k.secret}`).join(','),
  };
  const config: Config = loadConfig(env);
  const run = (name: string, args: string[], extra: Record<string, string> = {}, volume?: string) => {
    const id = `${prefix}-${name}`;
    const flags = Object.entries({ ...env, ...extra }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    podman([
      'run',
      '-d',
      '--name',
      id,
      '--network',
      'host',
      ...(volume ? ['-v', volume] : []),
      ...flags,
      ENGAGE_IMAGE,
      ...args,
    ]);
    started.push(id);
    return id;
  };
  // As compose.yaml starts them; each on a health port of its own (they share the host's network).
  run('receiver', ['external-receiver', '--host', '127.0.0.1', '--port', String(receiverPort)]);
  const components: Array<[string, string[]]> = [
    ['cdc', ['cdc']],
    ['processor', ['process', '--mode', 'stream']],
    ['sink-redis', ['sink', 'redis']],
    ['sink-warehouse', ['sink', 'warehouse']],
    ['sink-external', ['sink', 'external']],
  ];
  const healthPorts = new Map<string, number>();
  components.forEach(([name, args], i) => {
    const port = 29460 + offset + i;
    healthPorts.set(name, port);
    run(name, args, { HEALTH_PORT: String(port) }, name === 'sink-warehouse' ? `${dataDir}:/app/data` : undefined);
  });
  await until('the receiver', () => ok(`http://127.0.0.1:${receiverPort}/health`), 60_000);
  for (const [name, port] of healthPorts) {
    await until(`${name} ready`, () => ok(`http://127.0.0.1:${port}/health/ready`), 120_000);
    log(`${name} ready`);
  }

  log(`generator: ${RATE} events/s for ${SECONDS} s`);
  podman([
    'run',
    '--rm',
    '--network',
    'host',
    ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ENGAGE_IMAGE,
    'generate',
    '--mode',
    'continuous',
    '--rate',
    String(RATE),
    '--duration',
    String(SECONDS),
  ]);
  const db = new pg.Client({ connectionString: base.databaseUrl });
  await db.connect();
  const expected = Number((await db.query('SELECT count(*)::int AS n FROM engagement_events')).rows[0].n);
  await db.end();
  assert.ok(expected >= RATE * SECONDS * 0.5, `the generator wrote ${expected} events`);
  log(`${expected} events in PostgreSQL`);

  const receiverStats = async () =>
    (await (await fetch(`http://127.0.0.1:${receiverPort}/stats`)).json()) as { events_unique: number };
  await until(
    `the receiver to count ${expected} events`,
    async () => (await receiverStats()).events_unique === expected,
    300_000,
  );
  await until(
    `the Redis window to hold ${expected} events`,
    async () => (await readRedisWindow(config)).keys.size === expected,
    120_000,
  );
  for (const [name, port] of healthPorts) {
    const live = await fetch(`http://127.0.0.1:${port}/health/live`);
    assert.equal(live.status, 200, `${name} live`);
  }

  // SIGTERM each, upstream first, as `docker compose stop` would; each must drain and exit 0.
  for (const [name] of components) {
    const id = `${prefix}-${name}`;
    podman(['stop', '-t', '60', id]);
    const code = podman(['inspect', id, '--format', '{{.State.ExitCode}}']).trim();
    const tail = containerLogs(id, 5);
    assert.equal(code, '0', `${name} exited ${code}: ${tail}`);
    assert.match(tail, new RegExp(`"${name} stopped"`), `${name}: ${tail}`);
  }
  const rows = await warehouseKeys(path.join(dataDir, 'warehouse.duckdb'));
  assert.equal(rows.length, expected, 'DuckDB rows');
  assert.equal(new Set(rows).size, expected, 'DuckDB rows, each event once');
  const window = await readRedisWindow(config);
  assert.equal(window.total, expected, 'the Redis window counts each event once');
  assert.equal((await receiverStats()).events_unique, expected, 'the receiver');
  log(`proven: ${expected} events once in the receiver, Redis and DuckDB; every container exited 0 on SIGTERM`);
});
