/**
 * `npm run test:containers`, second case: compose.yaml itself, brought up. The engage image is the
 * Dockerfile built with podman (images.ts); PostgreSQL, Kafka and Redis are local stand-ins for the
 * official images (standins.ts: no registry serves those here), named through POSTGRES_IMAGE,
 * KAFKA_IMAGE and REDIS_IMAGE in Compose's env file, beside PII_KEYS, API_TOKEN, API_PORT and
 * GENERATOR_RATE. `docker-compose` (1.29, Debian's) drives podman's Docker API
 * (compose-project.ts), with `--profile load`: the generator and the reference receiver too.
 *
 * Awaited, each with a deadline: every service with a health check `healthy` (podman's checks run
 * by HealthTimer), CONTAINERS_RATE × CONTAINERS_SECONDS more of the generator's events in
 * PostgreSQL (it writes from the start, as Compose starts it beside the pipeline), then,
 * with the generator stopped, every one of them once in the receiver and in the Redis window. Then
 * `docker-compose stop` (SIGTERM, stop_grace_period): every pipeline container drained and exited
 * 0; every one once in DuckDB, read from the warehouse volume; `docker-compose down -v` leaves no
 * container. Only container addresses on the project's network are used, and the API's published
 * port (API_PORT, bound to 127.0.0.1 on a free port).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../../src/config/load.js';
import { readRedisWindow, warehouseKeys } from '../e2e/sink-reads.js';
import { waitFor } from '../helpers/wait.js';
import {
  BASE_IMAGE,
  ENGAGE_IMAGE,
  WORK,
  buildEngageImage,
  containerLogs,
  ensureBaseImage,
  podman,
  requireTools,
} from './images.js';
import { ComposeProject, HealthTimer, startPodmanService, type PodmanService } from './compose-project.js';
import { ensureStandIns } from './standins.js';

const RATE = Number(process.env.CONTAINERS_RATE ?? 200);
const SECONDS = Number(process.env.CONTAINERS_SECONDS ?? 40);
/** compose.yaml's services from the engage image: each must drain and exit 0 on SIGTERM. */
const PIPELINE = ['cdc', 'processor', 'sink-redis', 'sink-warehouse', 'sink-external', 'api', 'receiver'];
/** Those that log `<name> stopped` when drained (src/runtime/lifecycle.ts). */
const DRAINED = ['cdc', 'processor', 'sink-redis', 'sink-warehouse', 'sink-external'];
const project = `engage-compose-${process.pid}`;
const started = Date.now();
const log = (line: string) => console.log(`[compose ${((Date.now() - started) / 1000).toFixed(0)} s] ${line}`);

let service: PodmanService | undefined;
let compose: ComposeProject | undefined;
let timer: HealthTimer | undefined;
/** Compose's env file for this run (the secrets are this run's own, made here); removed after. */
const envFile = path.join(WORK, `${project}.env`);
after(async () => {
  timer?.stop();
  if (compose) await compose.run(['down', '-v', '--timeout', '60'], { allowFail: true, timeoutMs: 300_000 });
  await service?.stop();
  rmSync(envFile, { force: true });
});

/** A TCP port free on 127.0.0.1 now (the API's published port). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `check` every second (a failing check counts as not yet) until it holds. */
const until = (what: string, check: () => Promise<boolean>, ms: number) =>
  waitFor(what, () => check().catch(() => false), { timeoutMs: ms, everyMs: 1000 });

const json = async <T>(url: string): Promise<T> => (await fetch(url)).json() as Promise<T>;

test('compose.yaml up (local service images, --profile load): every event once in every sink, every container drains', async () => {
  requireTools(['docker-compose']);
  ensureBaseImage(log);
  buildEngageImage(log);
  const images = ensureStandIns(log);
  log(`images ready: ${ENGAGE_IMAGE}, ${Object.values(images).join(', ')}`);

  const apiPort = await freePort();
  const password = randomBytes(12).toString('hex');
  const env = {
    ENGAGE_IMAGE,
    NODE_IMAGE: BASE_IMAGE,
    POSTGRES_IMAGE: images.postgres,
    KAFKA_IMAGE: images.kafka,
    REDIS_IMAGE: images.redis,
    POSTGRES_PASSWORD: password,
    PII_KEYS: `k1:${randomBytes(32).toString('hex')}`,
    API_TOKEN: randomBytes(24).toString('hex'),
    API_PORT: `127.0.0.1:${apiPort}`,
    GENERATOR_RATE: String(RATE),
  };

  writeFileSync(
    envFile,
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
    { mode: 0o600 },
  );

  service = await startPodmanService(project);
  compose = new ComposeProject(project, service, envFile);
  timer = new HealthTimer(compose);
  timer.start();
  const c = compose;

  log('docker-compose --profile load up -d');
  const upStarted = Date.now();
  await c.run(['up', '-d', '--no-build'], { timeoutMs: 900_000 });
  log(`up returned after ${((Date.now() - upStarted) / 1000).toFixed(0)} s`);
  const withHealth = [...c.containers().keys()].filter((s) => s !== 'generator');
  assert.deepEqual(
    [...withHealth].sort(),
    [
      'api',
      'cdc',
      'kafka',
      'postgres',
      'processor',
      'receiver',
      'redis',
      'sink-external',
      'sink-redis',
      'sink-warehouse',
    ],
    'the services compose.yaml runs with --profile load, besides the generator',
  );
  for (const s of withHealth) {
    await until(`${s} healthy`, async () => c.inspect(s, '{{.State.Health.Status}}') === 'healthy', 300_000);
  }
  log(`every service healthy ${((Date.now() - upStarted) / 1000).toFixed(0)} s after up`);

  const pgClient = new pg.Client({
    connectionString: `postgresql://postgres:${password}@${c.address('postgres')}:5432/engagement_db`,
  });
  await pgClient.connect();
  const count = async () =>
    Number((await pgClient.query('SELECT count(*)::int AS n FROM engagement_events')).rows[0].n);
  // The generator has written since PostgreSQL, Kafka and Redis were healthy (its depends_on),
  // before the CDC's slot existed: those rows reach Kafka in the CDC's snapshot. Now, with every
  // service up, RATE × SECONDS more go through the stream.
  const before = await count();
  const target = before + RATE * SECONDS;
  await until(
    `the generator to write ${target} events`,
    async () => (await count()) >= target,
    SECONDS * 4000 + 60_000,
  );
  await c.run(['stop', 'generator']);
  assert.equal(
    c.inspect('generator', '{{.State.ExitCode}}'),
    '0',
    `generator: ${containerLogs(c.container('generator') ?? '', 5)}`,
  );
  const expected = await count();
  await pgClient.end();
  log(
    `generator stopped (exit 0): ${expected} events in PostgreSQL, ${before} of them before every service was healthy`,
  );

  const receiver = `http://${c.address('receiver')}:8090`;
  await until(
    `the receiver to count ${expected} events`,
    async () => (await json<{ events_unique: number }>(`${receiver}/stats`)).events_unique === expected,
    300_000,
  );
  const config = loadConfig({
    REDIS_URL: `redis://${c.address('redis')}:6379`,
    DATABASE_URL: 'postgresql://unused@127.0.0.1:1/unused',
    KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:1',
    PII_KEYS: env.PII_KEYS,
  });
  await until(
    `the Redis window to hold ${expected} events`,
    async () => (await readRedisWindow(config)).keys.size === expected,
    120_000,
  );
  const window = await readRedisWindow(config);
  assert.equal(window.total, expected, 'the Redis window counts each event once');
  log(`receiver and Redis window: ${expected} events each, once`);

  // The API through its published port; every pipeline container still live on its own port.
  const ready = await fetch(`http://127.0.0.1:${apiPort}/health/ready`);
  assert.equal(ready.status, 200, 'the API on its published port');
  for (const s of ['cdc', 'processor', 'sink-redis', 'sink-warehouse', 'sink-external']) {
    const live = await fetch(`http://${c.address(s)}:9464/health/live`);
    assert.equal(live.status, 200, `${s} live`);
  }

  // SIGTERM, each service its stop_grace_period (60 s), dependents first (Compose's order).
  const stopStarted = Date.now();
  await c.run(['stop'], { timeoutMs: 600_000 });
  log(`docker-compose stop took ${((Date.now() - stopStarted) / 1000).toFixed(0)} s`);
  const codes = new Map(
    [...c.containers()].map(([s, id]) => [s, podman(['inspect', id, '--format', '{{.State.ExitCode}}']).trim()]),
  );
  log(`exit codes: ${[...codes].map(([s, code]) => `${s} ${code}`).join(', ')}`);
  for (const s of PIPELINE) {
    const id = c.container(s) ?? '';
    assert.equal(codes.get(s), '0', `${s} exited ${codes.get(s)}: ${containerLogs(id, 5)}`);
  }
  for (const s of DRAINED) {
    const tail = containerLogs(c.container(s) ?? '', 5);
    assert.match(tail, new RegExp(`"${s} stopped"`), `${s}: ${tail}`);
  }

  const rows = await warehouseKeys(path.join(c.volumePath('warehouse-data'), 'warehouse.duckdb'));
  assert.equal(rows.length, expected, 'DuckDB rows');
  assert.equal(new Set(rows).size, expected, 'DuckDB rows, each event once');
  log(`DuckDB: ${rows.length} rows, each event once`);

  timer.stop();
  await c.run(['down', '-v'], { timeoutMs: 300_000 });
  assert.equal(c.containers().size, 0, 'down removed every container');
  compose = undefined;
  log(`proven: ${expected} events once in the receiver, Redis and DuckDB; every pipeline container exited 0`);
});
