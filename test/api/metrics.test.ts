import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FRESHNESS_BUCKETS } from '../../src/core/metrics.js';
import type { MetricsSummary } from '../../src/api/metrics/summary.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  heartbeatOf,
  publish,
  redisClient,
  startTestApi,
  wipePrefix,
  type TestApi,
  type TestRedis,
} from './fixtures.js';

/**
 * /metrics and /metrics/prometheus over heartbeats in real Redis: two processes of one sink and a
 * CDC process are merged without summing their gauges, rates come from successive heartbeats, and
 * promtool parses the exposition.
 */

export const PROMTOOL = '/usr/bin/promtool';

let env: TestEnv;
let api: TestApi;
let redis: TestRedis;

interface Proc {
  registry: Registry;
  out: Counter<'sink'>;
  lag: Gauge<'sink'>;
  fresh: Histogram<'sink'>;
  dlq: Counter<'sink'>;
}

function sinkProcess(): Proc {
  const registry = new Registry();
  const registers = [registry];
  const labelNames = ['sink'] as const;
  return {
    registry,
    out: new Counter({
      name: 'engage_sink_records_out_total',
      help: 'Records written to the sink',
      labelNames,
      registers,
    }),
    lag: new Gauge({ name: 'engage_sink_consumer_lag', help: 'Records not yet settled', labelNames, registers }),
    fresh: new Histogram({
      name: 'engage_sink_freshness_seconds',
      help: 'End-to-end freshness',
      labelNames,
      buckets: FRESHNESS_BUCKETS,
      registers,
    }),
    dlq: new Counter({ name: 'engage_sink_dlq_total', help: 'Records sent to the DLQ', labelNames, registers }),
  };
}

before(async () => {
  env = await createTestEnv();
  api = await startTestApi(env.config);
  redis = await redisClient(env.config);
});

after(async () => {
  await api.close();
  await wipePrefix(redis, env.config.REDIS_KEY_PREFIX);
  await redis.close();
  await env.cleanup();
});

describe('/metrics over heartbeats', () => {
  const a = sinkProcess();
  const b = sinkProcess();
  const cdc = new Registry();
  const rows = new Counter({
    name: 'engage_cdc_rows_total',
    help: 'Row changes',
    labelNames: ['slot', 'table', 'op'],
    registers: [cdc],
  });
  const lagMs = new Gauge({
    name: 'engage_cdc_replication_lag_ms',
    help: 'Replication lag',
    labelNames: ['slot'],
    registers: [cdc],
  });
  let t0 = 0;

  const beat = async (t: number) => {
    await publish(redis, env.config, await heartbeatOf('sink-redis', 'host-a-1', a.registry, { sentAt: t }));
    await publish(redis, env.config, await heartbeatOf('sink-redis', 'host-b-2', b.registry, { sentAt: t }));
    await publish(redis, env.config, await heartbeatOf('cdc', 'host-c-3', cdc, { sentAt: t }));
  };

  it('shows totals first, then per-second rates, per-sink lags and freshness from two rounds', async () => {
    // Heartbeat times are what rates divide by; they must be fresh (< 6 s) when the API reads them.
    t0 = Date.now() - 2000;
    a.out.inc({ sink: 'redis' }, 1000);
    b.out.inc({ sink: 'redis' }, 500);
    rows.inc({ slot: 's', table: 'engagement_events', op: 'c' }, 2000);
    await beat(t0);
    const first = (await api.app.inject({ url: '/metrics' })).json() as MetricsSummary;
    assert.deepEqual(
      first.throughput.map((x) => [x.stage, x.total, x.per_second]),
      [
        ['cdc', 2000, null],
        ['sink-redis', 1500, null],
      ],
    );
    assert.deepEqual(
      first.components.map((c) => c.component),
      ['cdc', 'sink-redis', 'sink-redis', 'api'],
    );

    a.out.inc({ sink: 'redis' }, 2000);
    b.out.inc({ sink: 'redis' }, 1000);
    rows.inc({ slot: 's', table: 'engagement_events', op: 'c' }, 4000);
    a.lag.set({ sink: 'redis' }, 40);
    b.lag.set({ sink: 'redis' }, 2);
    lagMs.set({ slot: 's' }, 120);
    for (let i = 0; i < 99; i += 1) a.fresh.observe({ sink: 'redis' }, 0.3);
    b.fresh.observe({ sink: 'redis' }, 20);
    a.dlq.inc({ sink: 'redis' }, 3);
    await beat(t0 + 2000);
    const res = await api.app.inject({ url: '/metrics' });
    assert.equal(res.statusCode, 200);
    const m = res.json() as MetricsSummary;
    assert.deepEqual(
      m.throughput.map((x) => [x.stage, x.metric, x.total, x.per_second]),
      [
        ['cdc', 'engage_cdc_rows_total', 6000, 2000],
        ['sink-redis', 'engage_sink_records_out_total', 4500, 1500],
      ],
    );
    assert.deepEqual(
      m.lags.map((l) => [l.stage, l.metric, l.unit, l.value]),
      [
        ['cdc', 'engage_cdc_replication_lag_ms', 'ms', 120],
        ['sink-redis', 'engage_sink_consumer_lag', 'records', 42],
      ],
    );
    const fresh = m.freshness.find((f) => f.stage === 'sink-redis');
    assert.equal(fresh?.basis, 'window');
    assert.equal(fresh?.count, 100);
    assert.ok(fresh && fresh.p50 !== null && fresh.p50 > 0.25 && fresh.p50 <= 0.5, `p50 ${fresh?.p50}`);
    assert.ok(fresh && fresh.p99 !== null && fresh.p99 <= 0.5, `p99 ${fresh?.p99}`);
    assert.equal(m.dlq_total, 3);
    assert.ok(m.uptime_seconds > 0);
  });

  it('serves every process in the Prometheus text format, labelled by instance, parseable by promtool', async (t) => {
    const res = await api.app.inject({ url: '/metrics/prometheus' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = res.body;
    assert.match(text, /^engage_sink_consumer_lag\{[^}]*instance_id="host-a-1"[^}]*\} 40$/m);
    assert.match(text, /^engage_sink_consumer_lag\{[^}]*instance_id="host-b-2"[^}]*\} 2$/m);
    assert.match(text, /^engage_cdc_rows_total\{[^}]*component="cdc"[^}]*\} 6000$/m);
    assert.match(text, /^engage_sink_freshness_seconds_bucket\{[^}]*le="\+Inf"[^}]*instance_id="host-a-1"[^}]*\} 99$/m);
    assert.match(text, /^engage_health_component_up\{component="sink-redis"[^}]*\} 2$/m);
    assert.match(text, /^engage_health_component_up\{component="processor"[^}]*\} 0$/m);
    assert.match(text, /^engage_api_http_requests_total\{[^}]*route="\/metrics"[^}]*\} \d+$/m);
    assert.equal(text.match(/^# TYPE engage_sink_records_out_total counter$/gm)?.length, 1);
    if (!existsSync(PROMTOOL)) {
      t.skip(
        `promtool not installed (${PROMTOOL}); \`npm test\` installs Debian's prometheus package through scripts/ensure-deps.mjs`,
      );
      return;
    }
    const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
    const out = `${check.stdout}${check.stderr}`;
    // Exit 1 = the exposition does not parse; exit 3 = it parses but a name breaks a naming
    // convention (reported, not fatal: names belong to the components that register them).
    assert.doesNotMatch(out, /error while linting|parsing error/i, out);
    assert.ok(check.status === 0 || check.status === 3, `promtool check metrics exited ${check.status}:\n${out}`);
    if (check.status === 3) t.diagnostic(`promtool lint findings (not parse errors):\n${out.trim()}`);
  });

  it('drops a process whose heartbeat expired', async () => {
    await redis.del(`${env.config.REDIS_KEY_PREFIX}hb:sink-redis:host-b-2`);
    const text = (await api.app.inject({ url: '/metrics/prometheus' })).body;
    assert.doesNotMatch(text, /instance_id="host-b-2"/);
    assert.match(text, /instance_id="host-a-1"/);
  });
});
