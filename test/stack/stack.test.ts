import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import { loadConfig, privatePorts, type Config } from '../../src/config/load.js';
import { PipelineError } from '../../src/core/errors.js';
import { createKafka } from '../../src/kafka/client.js';
import { pipelineTopics } from '../../src/kafka/admin.js';
import {
  checkExternalPostgres,
  fallbackRoot as clusterFallback,
  pgAnswers,
  startPrivatePostgres,
} from '../../src/stack/postgres.js';
import { isAlive, portHolder, stopPid, tcpOpen } from '../../src/stack/process.js';
import { startPrivateRedis } from '../../src/stack/redis.js';
import { registryAnswers } from '../../src/stack/registry.js';
import { REPO_ROOT, stackDown, stackEnv, stackStatus, stackUp, type ServiceStatus } from '../../src/stack/stack.js';
import { readStackState } from '../../src/config/stack-state.js';

/**
 * `engage stack` from nothing: a SECOND private stack (own temp STACK_DIR, ports shifted by
 * STACK_PORT_OFFSET) beside the shared one, which it must never touch. Redis is given by URL (the
 * shared stack's), so this stack must neither start nor stop it. One up/down cycle (a JVM is heavy),
 * and one restart of the schema registry alone.
 * The temp dir is 0700, so when run as root the private PostgreSQL cannot live inside it and must
 * fall back to /var/tmp — that path is exercised here too.
 */

const shared = loadConfig();
const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'engage-stack-test-'));
const stackDir = path.join(tmpRoot, 'stack');
const asRoot = process.getuid?.() === 0;

async function freeOffset(): Promise<number> {
  for (let offset = 200; offset < 400; offset += 10) {
    const p = privatePorts(offset);
    const taken = await Promise.all(
      [p.postgres, p.kafka, p.kafkaController, p.kafkaSasl, p.kafkaTls, p.kafkaSaslTls, p.registry].map((port) =>
        tcpOpen('127.0.0.1', port, 300),
      ),
    );
    if (!taken.some(Boolean)) return offset;
  }
  throw new Error('no free STACK_PORT_OFFSET between 200 and 390');
}

function privateConfig(offset: number): Config {
  // An explicit environment: the private services' URLs unset, Redis given (the shared one).
  return loadConfig(
    {
      STACK_DIR: stackDir,
      STACK_PORT_OFFSET: String(offset),
      REDIS_URL: shared.redisUrl,
      KAFKA_TOPIC_PARTITIONS: '2',
      LOG_LEVEL: 'warn',
    },
    tmpRoot,
  );
}

async function redisPing(url: string): Promise<string> {
  const client = createClient({ url, socket: { connectTimeout: 3000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.ping();
  } finally {
    await client.quit();
  }
}

// Runs after every suite of this file.
after(() => rmSync(tmpRoot, { recursive: true, force: true }));

function byName(rows: ServiceStatus[], name: string): ServiceStatus {
  const row = rows.find((r) => r.name === name);
  assert.ok(row, `status has ${name}`);
  return row;
}

describe('engage stack: a second private stack from nothing', { timeout: 240_000 }, () => {
  let config: Config;
  let offset = 0;
  let stopped = false;
  const fallbackRoot = path.join(
    '/var/tmp',
    `engage-stack-${createHash('sha1').update(path.resolve(stackDir)).digest('hex').slice(0, 12)}`,
  );

  before(async () => {
    offset = await freeOffset();
    config = privateConfig(offset);
    // loadConfig already wrote the stack's development PII key there; nothing else is yet.
    assert.deepEqual(existsSync(stackDir) ? readdirSync(stackDir) : [], existsSync(stackDir) ? ['pii-keys'] : []);
    assert.equal(statSync(tmpRoot).mode & 0o777, 0o700, 'mkdtemp makes a 0700 directory');
  });

  after(async () => {
    if (config && !stopped) await stackDown(config).catch(() => undefined);
    rmSync(fallbackRoot, { recursive: true, force: true });
  });

  test('up from nothing starts PostgreSQL (logical WAL, schema), Kafka (topics) and the registry; Redis given by URL answers', async () => {
    const rows = await stackUp(config);
    assert.deepEqual(
      rows.map((r) => [r.name, r.up]),
      [
        ['postgres', true],
        ['kafka', true],
        ['redis', true],
        ['registry', true],
      ],
    );
    const resolved = loadConfig(
      { STACK_DIR: stackDir, STACK_PORT_OFFSET: String(offset), REDIS_URL: shared.redisUrl },
      tmpRoot,
    );
    assert.equal(resolved.databaseUrl, `postgresql://postgres@127.0.0.1:${config.ports.postgres}/engagement_db`);
    assert.notEqual(resolved.databaseUrl, shared.databaseUrl);

    const db = new pg.Client({ connectionString: resolved.databaseUrl });
    await db.connect();
    try {
      assert.equal((await db.query<{ wal_level: string }>('SHOW wal_level')).rows[0]?.wal_level, 'logical');
      const n = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM content')).rows[0]?.n ?? 0;
      assert.ok(n >= 50, `init.sql applied: ${n} content rows`);
    } finally {
      await db.end();
    }

    const admin = createKafka(resolved, 'stack-test-admin').admin();
    await admin.connect();
    try {
      const topics = new Set(await admin.listTopics());
      for (const spec of pipelineTopics(config)) assert.ok(topics.has(spec.topic), `topic ${spec.topic} exists`);
    } finally {
      await admin.disconnect();
    }
    assert.equal(await redisPing(resolved.redisUrl), 'PONG');
    assert.equal(
      resolved.schemaRegistryUrl,
      `http://127.0.0.1:${config.ports.registry}/apis/ccompat/v7`,
      'the stack records its registry for every command',
    );
    assert.equal(await registryAnswers(resolved.schemaRegistryUrl), true);
  });

  const schema = {
    type: 'record',
    name: 'StackProbe',
    namespace: 'test.stack',
    fields: [{ name: 'id', type: 'long' }],
  };
  let schemaId = 0;

  test("the registry's Confluent-compatible API registers an Avro schema and serves it by id", async () => {
    const url = config.schemaRegistryUrl;
    const res = await fetch(`${url}/subjects/stack-probe-value/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema: JSON.stringify(schema) }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    schemaId = ((await res.json()) as { id: number }).id;
    assert.ok(Number.isInteger(schemaId) && schemaId > 0, `an id: ${schemaId}`);
    const byId = (await (await fetch(`${url}/schemas/ids/${schemaId}`)).json()) as { schema: string };
    assert.deepEqual(JSON.parse(byId.schema), schema);
    assert.deepEqual(await (await fetch(`${url}/subjects`)).json(), ['stack-probe-value']);
  });

  test('the registry keeps its schemas across a restart (file-based H2 in the stack folder)', async () => {
    const before = readStackState(stackDir)?.services.registry;
    assert.ok(before?.pid && before.dataDir?.startsWith(stackDir), `a private registry: ${JSON.stringify(before)}`);
    await stopPid(before.pid); // SIGTERM, as `stack down` stops it
    assert.equal(await registryAnswers(before.url), false, 'stopped');
    const rows = await stackUp(config, { topics: false });
    assert.equal(byName(rows, 'registry').up, true);
    const after = readStackState(stackDir)?.services.registry;
    assert.ok(after?.pid && after.pid !== before.pid && isAlive(after.pid), 'a new registry process is recorded');
    const byId = (await (await fetch(`${after.url}/schemas/ids/${schemaId}`)).json()) as { schema: string };
    assert.deepEqual(JSON.parse(byId.schema), schema, 'the same id serves the same schema');
    assert.deepEqual(await (await fetch(`${after.url}/subjects`)).json(), ['stack-probe-value']);
  });

  test('the private PostgreSQL lives where its server user can write', () => {
    const dataDir = readStackState(stackDir)?.services.postgres?.dataDir ?? '';
    assert.ok(existsSync(path.join(dataDir, 'PG_VERSION')), `a cluster in ${dataDir}`);
    if (asRoot) {
      // tmpRoot is 0700 root-owned: `postgres` cannot traverse it, so the cluster moved out.
      assert.ok(dataDir.startsWith(`${fallbackRoot}${path.sep}`), `fell back to /var/tmp: ${dataDir}`);
    } else {
      assert.ok(dataDir.startsWith(`${stackDir}${path.sep}`), dataDir);
    }
  });

  test('a second up is idempotent: the same processes are reused', async () => {
    const before = readStackState(stackDir);
    await stackUp(config);
    const after = readStackState(stackDir);
    for (const name of ['postgres', 'kafka', 'registry'] as const) {
      assert.ok(before?.services[name]?.pid, `${name} has a pid`);
      assert.equal(after?.services[name]?.pid, before?.services[name]?.pid, `${name} not restarted`);
    }
  });

  test('status shows each service up and who started it', async () => {
    const rows = await stackStatus(config);
    for (const r of rows) assert.equal(r.up, true, `${r.name} up`);
    assert.equal(byName(rows, 'postgres').startedByStack, true);
    assert.equal(byName(rows, 'kafka').startedByStack, true);
    assert.equal(byName(rows, 'registry').startedByStack, true);
    assert.equal(byName(rows, 'redis').startedByStack, false);
    assert.equal(byName(rows, 'redis').url, shared.redisUrl);
  });

  test('env prints export lines with the private addresses', () => {
    const text = stackEnv(config);
    assert.match(
      text,
      new RegExp(
        `^export DATABASE_URL='postgresql://postgres@127\\.0\\.0\\.1:${config.ports.postgres}/engagement_db'$`,
        'm',
      ),
    );
    assert.match(text, new RegExp(`^export KAFKA_BOOTSTRAP_SERVERS='127\\.0\\.0\\.1:${config.ports.kafka}'$`, 'm'));
    assert.match(text, new RegExp(`^export REDIS_URL='${shared.redisUrl.replace(/[.]/g, '\\.')}'$`, 'm'));
    assert.match(text, new RegExp(`^export PGPORT='${config.ports.postgres}'$`, 'm'));
    assert.match(
      text,
      new RegExp(`^export SCHEMA_REGISTRY_URL='http://127\\.0\\.0\\.1:${config.ports.registry}/apis/ccompat/v7'$`, 'm'),
    );
  });

  test('`engage stack env` and `status` show the registry beside the other services', async () => {
    const env = { STACK_DIR: stackDir, STACK_PORT_OFFSET: String(offset), REDIS_URL: shared.redisUrl };
    const [printed, status] = await Promise.all([engage(['stack', 'env'], env), engage(['stack', 'status'], env)]);
    assert.equal(printed.code, 0, printed.stderr);
    const url = config.schemaRegistryUrl.replace(/[.]/g, '\\.');
    assert.match(printed.stdout, new RegExp(`^export SCHEMA_REGISTRY_URL='${url}'$`, 'm'));
    assert.match(status.stdout, new RegExp(`^registry +up +${url} +started by the stack`, 'm'), status.stdout);
  });

  test('an up given the stack\'s own addresses (`eval "$(engage stack env)"`) keeps them the stack\'s', async () => {
    const before = readStackState(stackDir);
    const own = loadConfig(
      { STACK_DIR: stackDir, STACK_PORT_OFFSET: String(offset), REDIS_URL: shared.redisUrl },
      tmpRoot,
    );
    // As a shell that exported `engage stack env` (another database on the same server, as a test's environment has).
    const exported = loadConfig(
      {
        STACK_DIR: stackDir,
        STACK_PORT_OFFSET: String(offset),
        DATABASE_URL: own.databaseUrl.replace(/\/engagement_db$/, '/postgres'),
        KAFKA_BOOTSTRAP_SERVERS: own.kafkaBrokers.join(','),
        REDIS_URL: shared.redisUrl,
      },
      tmpRoot,
    );
    assert.equal(exported.origins.kafka, 'env');
    const rows = await stackUp(exported, { topics: false });
    assert.equal(byName(rows, 'postgres').startedByStack, true);
    assert.equal(byName(rows, 'kafka').startedByStack, true);
    const after = readStackState(stackDir);
    for (const name of ['postgres', 'kafka', 'registry'] as const)
      assert.deepEqual(after?.services[name], before?.services[name], `${name}: the stack's record unchanged`);
    assert.equal(after?.services.redis?.startedByStack, false, "the Redis given by URL stays not the stack's");
  });

  test('down stops what it started and nothing else', async () => {
    const state = readStackState(stackDir);
    const pids = {
      postgres: state?.services.postgres?.pid,
      kafka: state?.services.kafka?.pid,
      registry: state?.services.registry?.pid,
    };
    const stoppedNames: string[] = [];
    await stackDown(config, (name) => stoppedNames.push(name));
    stopped = true;
    assert.deepEqual(stoppedNames.sort(), ['kafka', 'postgres', 'registry']);
    assert.equal(isAlive(pids.postgres), false, 'postgres process gone');
    assert.equal(isAlive(pids.kafka), false, 'kafka process gone');
    assert.equal(isAlive(pids.registry), false, 'registry process gone');
    const rows = await stackStatus(config);
    assert.equal(byName(rows, 'postgres').up, false);
    assert.equal(byName(rows, 'kafka').up, false);
    assert.equal(byName(rows, 'registry').up, false);
    assert.equal(await redisPing(shared.redisUrl), 'PONG', 'the Redis given by URL still runs');
    assert.equal(await pgAnswers(shared.databaseUrl), true, 'the shared stack is untouched');
  });
});

describe('misconfigured and unreachable services', () => {
  const machinePg = 'postgresql://postgres@127.0.0.1:5432/postgres';

  test('a PostgreSQL with wal_level=replica is refused with the fix', async (t) => {
    // The machine's own PostgreSQL (wal_level=replica) is only connected to and read (SHOW).
    if (!(await pgAnswers(machinePg))) {
      t.skip('no PostgreSQL on 127.0.0.1:5432 on this machine');
      return;
    }
    await assert.rejects(checkExternalPostgres(machinePg), (err: unknown) => {
      assert.ok(err instanceof PipelineError);
      assert.equal(err.code, 'SERVICE_MISCONFIGURED');
      assert.match(err.message, /wal_level = replica/);
      assert.match(err.message, /ALTER SYSTEM SET wal_level = logical/);
      assert.match(err.message, /DATABASE_URL/);
      return true;
    });
    const dir = path.join(tmpRoot, 'misconfigured');
    const config = loadConfig(
      {
        STACK_DIR: dir,
        DATABASE_URL: machinePg,
        KAFKA_BOOTSTRAP_SERVERS: shared.kafkaBrokers.join(','),
        REDIS_URL: shared.redisUrl,
        SCHEMA_REGISTRY_URL: shared.schemaRegistryUrl,
      },
      tmpRoot,
    );
    await assert.rejects(
      stackUp(config, { topics: false }),
      (err: unknown) => err instanceof PipelineError && err.code === 'SERVICE_MISCONFIGURED',
    );
    assert.equal(readStackState(dir)?.services.postgres, undefined, 'a refused server is not recorded');
  });

  test('a private port held by another process: the message names the process and the ways out', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    // `ss` names another user's process only to root; without `ss` the message omits the holder.
    const named = asRoot && spawnSync('ss', ['-V']).status === 0;
    try {
      if (named) assert.equal(portHolder(port), `node, pid ${process.pid}`);
      const ports = { ...privatePorts(0), redis: port };
      await assert.rejects(startPrivateRedis(path.join(tmpRoot, 'taken'), ports, undefined), (err: unknown) => {
        assert.ok(err instanceof PipelineError);
        assert.equal(err.code, 'STACK_START_FAILED');
        assert.match(
          err.message,
          new RegExp(
            `^port ${port} is taken by another process${named ? ` \\(node, pid ${process.pid}\\)` : ''}; the private Redis cannot start`,
          ),
        );
        assert.match(err.message, /set REDIS_URL to use it, or set STACK_PORT_OFFSET/);
        return true;
      });
      // PostgreSQL too: whatever answers on the port is not taken for the stack's own server.
      // (tmpRoot is 0700: the cluster's folder falls back to /var/tmp, removed below.)
      await assert.rejects(
        startPrivatePostgres(path.join(tmpRoot, 'taken'), { ...privatePorts(0), postgres: port }, undefined),
        (err: unknown) => {
          assert.ok(err instanceof PipelineError);
          assert.equal(err.code, 'STACK_START_FAILED');
          assert.match(
            err.message,
            new RegExp(
              `^port ${port} is taken by another process.*; the private PostgreSQL cannot start\\. Stop it, set DATABASE_URL to use it`,
            ),
          );
          return true;
        },
      );
    } finally {
      holder.close();
      rmSync(clusterFallback(path.join(tmpRoot, 'taken')), { recursive: true, force: true });
    }
    assert.equal(portHolder(port), null, 'nobody listens any more');
  });

  test('an unreachable DATABASE_URL names the variable and what to do', async () => {
    await assert.rejects(checkExternalPostgres('postgresql://postgres@127.0.0.1:1/x'), (err: unknown) => {
      assert.ok(err instanceof PipelineError);
      assert.equal(err.code, 'SERVICE_UNREACHABLE');
      assert.match(err.message, /DATABASE_URL/);
      assert.match(err.message, /engage stack up/);
      return true;
    });
  });
});

/**
 * Runs `engage <args>` and collects its output: in the repository with this environment by default,
 * or with exactly `env` (beside PATH and HOME) in `tmpRoot`, where no `.env` is read.
 */
function engage(
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'engage.mjs'), ...args], {
      cwd: env ? tmpRoot : REPO_ROOT,
      env: env ? { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env } : process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

// Started at once, so the CLI's start-up overlaps the stack cycle above; awaited by the last test.
const usageRuns = Promise.all([engage(['bogus']), engage(['stack', '--bogus'])]);

describe('engage CLI usage errors', () => {
  test('an unknown command or an unknown flag exits 2 with usage', async () => {
    const [command, flag] = await usageRuns;
    assert.equal(command.code, 2);
    assert.match(command.stderr, /unknown command 'bogus'/);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /unknown option '--bogus'/);
  });
});
