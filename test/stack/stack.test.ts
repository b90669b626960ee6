import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import { loadConfig, privatePorts, type Config } from '../../src/config/load.js';
import { createKafka } from '../../src/kafka/client.js';
import { pipelineTopics } from '../../src/kafka/admin.js';
import { pgAnswers } from '../../src/stack/postgres.js';
import { isAlive, stopPid, tcpOpen } from '../../src/stack/process.js';
import { registryAnswers } from '../../src/stack/registry.js';
import { stackDown, stackEnv, stackStatus, stackUp, type ServiceStatus } from '../../src/stack/stack.js';
import { readStackState } from '../../src/config/stack-state.js';
import { engage } from './engage-cli.js';

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
    const [printed, status] = await Promise.all([
      engage(['stack', 'env'], env, tmpRoot),
      engage(['stack', 'status'], env, tmpRoot),
    ]);
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
