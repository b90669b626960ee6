import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Counter, Histogram, Registry } from 'prom-client';
import type { HealthReport } from '../../src/api/health/evaluate.js';
import type { MetricsSummary } from '../../src/api/metrics/summary.js';
import { createLogger } from '../../src/core/logger.js';
import { FRESHNESS_BUCKETS } from '../../src/core/metrics.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import { fileSinkFactory } from '../../src/sinks/file/index.js';
import { defaultExpectedComponents, defaultRunSinks, getSinkFactory } from '../../src/sinks/registry.js';
import { componentSpecs } from '../../src/supervisor/supervisor.js';
import {
  heartbeatOf,
  publish,
  redisClient,
  startTestApi,
  wipePrefix,
  type TestApi,
  type TestRedis,
} from '../api/fixtures.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A fourth sink, the file sink, registered with one line in src/sinks/registry.ts and nothing
 * else: `engage run` runs it once FILE_SINK_DIR is set (and not before), /health expects its stage
 * and shows what its `health()` says through the runner's heartbeat, /metrics orders its stage
 * after the external sink's and holds it to its own freshness target, and the generated alert
 * rules have its freshness rule. The three other sinks keep what they had.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let env: TestEnv;
let api: TestApi;
let redis: TestRedis;
let dir: string;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'engage-file-registry-'));
  env = await createTestEnv({ FILE_SINK_DIR: dir });
  api = await startTestApi(env.config);
  redis = await redisClient(env.config);
});

after(async () => {
  await api.close();
  await wipePrefix(redis, env.config.REDIS_KEY_PREFIX);
  await redis.close();
  await env.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const run = { generator: false, rate: 1, api: true };

describe('a sink registered in src/sinks/registry.ts', () => {
  it('is run by `engage run` once configured, after the three pipeline sinks', () => {
    const unset = { ...env.config, FILE_SINK_DIR: undefined, EXTERNAL_API_URL: undefined };
    assert.deepEqual(defaultRunSinks(unset), ['redis', 'warehouse', 'external']);
    assert.deepEqual(defaultRunSinks(env.config), ['redis', 'warehouse', 'external', 'file']);
    const names = (config: typeof env.config, receiver: boolean) =>
      componentSpecs(config, { ...run, receiver, sinks: defaultRunSinks(config) }).map((s) => s.name);
    // Without EXTERNAL_API_URL nor the receiver the external sink is left out, as before.
    assert.deepEqual(names(unset, false), ['cdc', 'processor', 'sink-redis', 'sink-warehouse', 'api']);
    assert.deepEqual(names({ ...env.config, EXTERNAL_API_URL: undefined }, true), [
      'external-receiver',
      'cdc',
      'processor',
      'sink-redis',
      'sink-warehouse',
      'sink-external',
      'sink-file',
      'api',
    ]);
    const specs = componentSpecs(
      { ...env.config, EXTERNAL_API_URL: undefined },
      { ...run, receiver: true, sinks: defaultRunSinks(env.config) },
    );
    assert.deepEqual(specs.find((s) => s.name === 'sink-file')?.args, ['sink', 'file']);
    assert.equal(
      specs.find((s) => s.name === 'sink-external')?.env?.EXTERNAL_API_URL,
      `http://127.0.0.1:${env.config.EXTERNAL_RECEIVER_PORT}/events`,
    );
    assert.equal(getSinkFactory('file'), fileSinkFactory);
  });

  it('is expected by /health, which shows what its health() says', async () => {
    assert.equal(env.config.API_EXPECTED_COMPONENTS, undefined);
    assert.deepEqual(defaultExpectedComponents(env.config), [
      'cdc',
      'processor',
      'sink-redis',
      'sink-warehouse',
      'sink-external',
      'sink-file',
    ]);
    const missing = (await api.app.inject({ url: '/health' })).json() as HealthReport;
    assert.equal(missing.stages['sink-file']?.expected, true);
    assert.ok(
      missing.problems.includes('stage sink-file: no heartbeat in the last 6 s (not running?)'),
      missing.problems.join('; '),
    );

    // The runner publishes the sink's health() in its heartbeat status.
    const runner = await startSinkRunner(env.config, fileSinkFactory, createLogger('error', 'registry-test'));
    try {
      await waitFor(
        'the runner reports the sink healthy',
        () => (runner.status().health as { ok?: boolean } | undefined)?.ok === true,
        30_000,
      );
    } finally {
      await runner.stop();
    }
    const unhealthy = {
      health: { ok: false, detail: { dir, error: 'SINK_WRITE_FAILED: file sink: ENOSPC: no space left on device' } },
    };
    await publish(redis, env.config, await heartbeatOf('sink-file', 'file-1', new Registry(), { status: unhealthy }));
    let report = missing;
    // /health is cached for a second.
    await waitFor(
      '/health sees the heartbeat',
      async () => {
        report = (await api.app.inject({ url: '/health' })).json() as HealthReport;
        return report.stages['sink-file']?.ok === true;
      },
      10_000,
    );
    assert.ok(
      report.warnings.includes(
        'stage sink-file (file-1) reports its sink unhealthy: SINK_WRITE_FAILED: file sink: ENOSPC: no space left on device',
      ),
      report.warnings.join('; '),
    );
  });

  it('has its stage in /metrics, after the external sink, held to its own freshness target', async () => {
    const registry = new Registry();
    const labelNames = ['sink'] as const;
    const out = new Counter({
      name: 'engage_sink_records_out_total',
      help: 'Records written to the sink',
      labelNames,
      registers: [registry],
    });
    const fresh = new Histogram({
      name: 'engage_sink_freshness_seconds',
      help: 'End-to-end freshness',
      labelNames,
      buckets: FRESHNESS_BUCKETS,
      registers: [registry],
    });
    for (const sink of ['file', 'external']) {
      out.inc({ sink }, 10);
      fresh.observe({ sink }, 0.5);
    }
    await publish(redis, env.config, await heartbeatOf('sink-file', 'file-1', registry));
    const m = (await api.app.inject({ url: '/metrics' })).json() as MetricsSummary;
    assert.deepEqual(
      m.throughput.map((t) => t.stage),
      ['sink-external', 'sink-file'],
    );
    const entry = m.freshness.find((f) => f.stage === 'sink-file') as { target_seconds?: number } | undefined;
    assert.equal(entry?.target_seconds, fileSinkFactory.operations.freshnessTargetSeconds);
  });

  it('has its freshness rule in the generated alert rules', () => {
    const alerts = readFileSync(path.join(root, 'deploy', 'prometheus', 'alerts.yml'), 'utf8');
    const target = fileSinkFactory.operations.freshnessTargetSeconds;
    assert.ok(
      alerts.includes(
        `expr: histogram_quantile(0.99, sum by (sink, le) (rate(engage_sink_freshness_seconds_bucket{sink="file"}[5m]))) > ${target}`,
      ),
    );
  });
});
