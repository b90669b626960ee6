import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { Registry } from 'prom-client';
import { loadConfig } from '../../src/config/load.js';
import type { HealthReport } from '../../src/api/health/evaluate.js';
import { HealthService } from '../../src/api/health/service.js';
import { startHeartbeat, type HeartbeatHandle } from '../../src/runtime/heartbeat.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { redisClient, startTestApi, wipePrefix, type TestApi, type TestRedis } from './fixtures.js';
import { waitFor } from '../helpers/wait.js';

/**
 * /health, /health/live, /health/ready against the real stack: stages come and go with real
 * heartbeats (src/runtime/heartbeat.ts), the CDC slot is a real logical slot, and a configuration
 * pointing at closed ports shows every service down.
 */

let env: TestEnv;
let api: TestApi;
let redis: TestRedis;
const beats = new Map<string, HeartbeatHandle>();
const state = { lag: 5, circuit: 'closed', warehouseOk: true };

const STATUS: Record<string, () => Record<string, unknown>> = {
  cdc: () => ({ slot: env.config.CDC_SLOT_NAME }),
  processor: () => ({ lag: 0 }),
  'sink-redis': () => ({ sink: 'redis', lag: state.lag }),
  'sink-warehouse': () => ({ sink: 'warehouse', lag: 0, warehouse: { ok: state.warehouseOk, backend: 'duckdb' } }),
  'sink-external': () => ({ sink: 'external', lag: 0, circuit: state.circuit }),
};

async function health(): Promise<{ code: number; body: HealthReport }> {
  const res = await api.app.inject({ url: '/health' });
  return { code: res.statusCode, body: res.json() as HealthReport };
}

before(async () => {
  env = await createTestEnv();
  api = await startTestApi(env.config);
  redis = await redisClient(env.config);
});

after(async () => {
  for (const hb of beats.values()) await hb.stop();
  await api.close();
  await wipePrefix(redis, env.config.REDIS_KEY_PREFIX);
  await redis.close();
  await env.cleanup();
});

describe('health endpoints', () => {
  it('/health/live answers 200 while the process runs', async () => {
    const res = await api.app.inject({ url: '/health/live' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().live, true);
  });

  it('/health/ready is 200 with PostgreSQL, Kafka and Redis reachable', async () => {
    const res = await api.app.inject({ url: '/health/ready' });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.ready, true);
    for (const name of ['postgres', 'kafka', 'redis']) assert.equal(body.services[name].ok, true, name);
  });

  it('/health is 503 naming every expected stage without a heartbeat', async () => {
    const { code, body } = await health();
    assert.equal(code, 503);
    assert.equal(body.status, 'unhealthy');
    for (const stage of ['cdc', 'processor', 'sink-redis', 'sink-warehouse', 'sink-external']) {
      assert.equal(body.stages[stage]?.ok, false, stage);
      assert.ok(
        body.problems.some((p) => p.includes(`stage ${stage}:`)),
        `problem for ${stage}: ${body.problems.join('; ')}`,
      );
    }
    assert.deepEqual(body.replication_slot, {
      name: env.config.CDC_SLOT_NAME,
      exists: false,
      active: null,
      retained_wal_bytes: null,
      confirmed_lag_bytes: null,
      warn_bytes: env.config.CDC_WAL_WARN_BYTES,
    });
  });

  it('is 200 healthy once every stage beats, with lags, warehouse and circuit from their status', async () => {
    for (const [name, status] of Object.entries(STATUS)) beats.set(name, startHeartbeat(env.config, name, status, 500));
    const { body } = await waitFor('healthy', health, { until: (h) => h.code === 200 });
    assert.equal(body.status, 'healthy', JSON.stringify(body.warnings));
    assert.deepEqual(body.problems, []);
    assert.equal(body.stages['sink-redis']?.consumer_lag, 5);
    assert.equal(body.stages['sink-redis']?.instances.length, 1);
    assert.equal(body.external.circuit, 'closed');
    assert.equal(body.warehouse.ok, true);
    assert.equal(body.warehouse.backend, 'duckdb');
  });

  it('reports the CDC slot: retained WAL beyond CDC_WAL_WARN_BYTES and an idle slot make it degraded', async () => {
    const db = new pg.Client({ connectionString: env.config.databaseUrl });
    await db.connect();
    try {
      await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [env.config.CDC_SLOT_NAME]);
      await db.query(
        `INSERT INTO content (id, slug, title, content_type, length_seconds, publish_ts) VALUES (gen_random_uuid(), 'wal-' || md5(random()::text), 'WAL filler', 'video', 60, now())`,
      );
    } finally {
      await db.end();
    }
    const { code, body } = await waitFor('slot seen', health, {
      until: (h) => h.body.replication_slot?.exists === true,
    });
    assert.equal(code, 200);
    assert.equal(body.status, 'degraded');
    assert.equal(body.replication_slot?.active, false);
    assert.ok((body.replication_slot?.retained_wal_bytes ?? -1) > 0, 'the insert after the slot is retained');
    assert.ok(
      body.warnings.some((w) => w.includes('is not active although the CDC runs')),
      body.warnings.join('; '),
    );

    // The same probe with a tiny WAL threshold warns about the retained WAL too.
    const strict = new HealthService({ ...env.config, CDC_WAL_WARN_BYTES: 1 }, api.deps, new Registry());
    const report = await strict.report();
    assert.ok(
      report.warnings.some((w) => /retains \d+ bytes of WAL/.test(w)),
      report.warnings.join('; '),
    );
    const db2 = new pg.Client({ connectionString: env.config.databaseUrl });
    await db2.connect();
    await db2.query('SELECT pg_drop_replication_slot($1)', [env.config.CDC_SLOT_NAME]);
    await db2.end();
    await waitFor('healthy again', health, { until: (h) => h.body.status === 'healthy' });
  });

  it('is degraded while the external circuit is open or a consumer lag is high', async () => {
    state.circuit = 'half-open';
    let h = await waitFor('circuit half-open', health, { until: (x) => x.body.external.circuit === 'half_open' });
    assert.equal(h.code, 200);
    assert.equal(h.body.status, 'degraded');
    state.circuit = 'open';
    h = await waitFor('circuit open', health, { until: (x) => x.body.external.circuit === 'open' });
    assert.ok(
      h.body.warnings.some((w) => w.includes('circuit is open')),
      h.body.warnings.join('; '),
    );
    state.circuit = 'closed';
    state.lag = 25_000;
    h = await waitFor('lag high', health, { until: (x) => x.body.stages['sink-redis']?.consumer_lag === 25_000 });
    assert.equal(h.body.status, 'degraded');
    assert.ok(
      h.body.warnings.some((w) => w.includes('stage sink-redis: consumer lag 25000')),
      h.body.warnings.join('; '),
    );
    state.lag = 0;
    state.warehouseOk = false;
    h = await waitFor('warehouse down', health, { until: (x) => x.body.warehouse.ok === false });
    assert.equal(h.body.status, 'degraded');
    state.warehouseOk = true;
    await waitFor('healthy again', health, { until: (x) => x.body.status === 'healthy' });
  });

  it('is 503 again when a stage stops', async () => {
    await beats.get('processor')?.stop();
    beats.delete('processor');
    const { body } = await waitFor('processor missing', health, { until: (h) => h.code === 503 });
    assert.equal(body.stages.processor?.ok, false);
    assert.deepEqual(body.problems, ['stage processor: no heartbeat in the last 6 s (not running?)']);
  });

  it('probes at most once a second however many callers ask', async () => {
    let kafkaCalls = 0;
    let now = 1_000_000;
    const deps = {
      ...api.deps,
      kafkaReady: async () => {
        kafkaCalls += 1;
        return true;
      },
    };
    const svc = new HealthService(env.config, deps, new Registry(), () => now);
    await Promise.all([svc.report(), svc.report(), svc.report()]);
    await svc.report();
    assert.equal(kafkaCalls, 1);
    now += 999;
    await svc.report();
    assert.equal(kafkaCalls, 1);
    now += 2;
    await svc.report();
    assert.equal(kafkaCalls, 2);
  });
});

describe('health with every service unreachable', () => {
  it('is 503 for /health and /health/ready, 200 for /health/live, and says which service is down', async () => {
    const down = loadConfig({
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/none',
      KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:1',
      REDIS_URL: 'redis://127.0.0.1:1',
      STACK_DIR: env.config.STACK_DIR,
      LOG_LEVEL: 'silent',
    });
    const dead = await startTestApi(down);
    try {
      assert.equal((await dead.app.inject({ url: '/health/live' })).statusCode, 200);
      const ready = await dead.app.inject({ url: '/health/ready' });
      assert.equal(ready.statusCode, 503);
      const services = ready.json().services as Record<string, { ok: boolean; error?: string }>;
      for (const name of ['postgres', 'kafka', 'redis']) {
        assert.equal(services[name]?.ok, false, name);
        assert.ok((services[name]?.error ?? '').length > 0, `${name} error message`);
      }
      const res = await dead.app.inject({ url: '/health' });
      assert.equal(res.statusCode, 503);
      const body = res.json() as HealthReport;
      assert.ok(body.problems.some((p) => p.startsWith('postgres unreachable')));
      assert.ok(body.problems.some((p) => p.includes('Redis, which is unreachable')));
      const prom = await dead.app.inject({ url: '/metrics/prometheus' });
      assert.equal(prom.statusCode, 200);
      assert.match(prom.body, /^engage_health_service_up\{[^}]*service="redis"[^}]*\} 0$/m);
      const top = await dead.app.inject({ url: '/top-content' });
      assert.equal(top.statusCode, 503, top.body);
      assert.equal(top.json().code, 'SERVICE_UNREACHABLE');
    } finally {
      await dead.close();
    }
  });
});
