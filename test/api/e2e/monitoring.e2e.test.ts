import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { HealthReport } from '../../../src/api/health/evaluate.js';
import type { MetricsSummary } from '../../../src/api/metrics/summary.js';
import { createTestEnv, type TestEnv } from '../../helpers/env.js';
import { configEnv, redisClient, wipePrefix } from '../fixtures.js';
import { waitFor } from '../../helpers/wait.js';

/**
 * The monitoring view of a real pipeline: every component runs as its own `engage …` process
 * (external receiver, cdc, processor, the three sinks, the API) while `engage generate` writes
 * engagement into PostgreSQL. The API must see every stage alive through heartbeats, derive rates
 * and freshness for each, serve samples for the metrics deploy/ relies on, and the dashboard must
 * draw it all (test-output/dashboard-pipeline.png).
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SINKS = ['sink-redis', 'sink-warehouse', 'sink-external'];
const STAGES = ['cdc', 'processor', ...SINKS];
const children: Array<{ name: string; child: ChildProcess; log: string[] }> = [];
let env: TestEnv;
let childEnv: NodeJS.ProcessEnv;
let apiUrl = '';

function start(name: string, args: string[], extra: NodeJS.ProcessEnv = {}): { child: ChildProcess; log: string[] } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    env: { ...childEnv, ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  child.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  children.push({ name, child, log });
  return { child, log };
}

async function urlOf(name: string, log: string[]): Promise<string> {
  const url = await waitFor(
    `${name} to listen`,
    async () => /listening on (http:\S+)/.exec(log.join(''))?.[1] ?? null,
    { until: (u) => u !== null, timeoutMs: 120_000, everyMs: 250 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${log.join('').slice(-3000)}`);
  });
  return url as string;
}

const getJson = async <T>(p: string): Promise<{ status: number; body: T }> => {
  const res = await fetch(`${apiUrl}${p}`);
  return { status: res.status, body: (await res.json()) as T };
};

before(async () => {
  env = await createTestEnv({ WAREHOUSE_FLUSH_SECONDS: '1' });
  childEnv = configEnv(env.config, { LOG_LEVEL: 'warn' });
  const receiver = start('external-receiver', ['external-receiver', '--port', '0']);
  // The receiver prints its POST endpoint (…/events).
  childEnv.EXTERNAL_API_URL = await urlOf('external-receiver', receiver.log);
  start('cdc', ['cdc']);
  start('processor', ['process', '--mode', 'stream']);
  for (const sink of ['redis', 'warehouse', 'external']) start(`sink-${sink}`, ['sink', sink]);
  const api = start('api', ['api', '--port', '0']);
  apiUrl = await urlOf('api', api.log);
  start('generator', ['generate', '--mode', 'continuous', '--rate', '40', '--duration', '150']);
});

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
async function stop(child: ChildProcess, graceMs = 60_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

after(async () => {
  // Everything but the receiver first: the external sink drains into it before it goes.
  const receiver = children.find((c) => c.name === 'external-receiver');
  await Promise.all(children.filter((c) => c !== receiver).map((c) => stop(c.child)));
  if (receiver) await stop(receiver.child);
  const redis = await redisClient(env.config);
  await wipePrefix(redis, env.config.REDIS_KEY_PREFIX);
  await redis.close();
  await env.cleanup();
});

const logs = () =>
  children.map((c) => `--- ${c.name} (exit ${c.child.exitCode})\n${c.log.join('').slice(-1500)}`).join('\n');

describe('monitoring a running pipeline', { timeout: 300_000 }, () => {
  it('sees every stage alive and the pipeline healthy', async () => {
    const h = await waitFor('/health healthy', () => getJson<HealthReport>('/health'), {
      until: (r) => r.status === 200 && r.body.status === 'healthy',
      timeoutMs: 150_000,
      everyMs: 1000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    for (const stage of STAGES) assert.equal(h.body.stages[stage]?.ok, true, stage);
    assert.equal(h.body.replication_slot?.exists, true);
    assert.equal(h.body.replication_slot?.active, true);
    assert.equal(h.body.external.circuit, 'closed');
    assert.equal(h.body.warehouse.ok, true);
  });

  it('derives throughput for every stage and freshness for every sink', async () => {
    const m = await waitFor('rates for every stage', async () => (await getJson<MetricsSummary>('/metrics')).body, {
      until: (b) =>
        STAGES.every((s) => (b.throughput.find((t) => t.stage === s)?.per_second ?? 0) > 0) &&
        SINKS.every((s) => (b.freshness.find((f) => f.stage === s)?.count ?? 0) > 0),
      timeoutMs: 90_000,
      everyMs: 1000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    assert.equal(m.dlq_total, 0, JSON.stringify(m.dlq));
    for (const sink of SINKS) {
      const f = m.freshness.find((x) => x.stage === sink);
      assert.ok(f && f.p50 !== null && f.p99 !== null && f.p50 <= f.p99, `${sink} freshness: ${JSON.stringify(f)}`);
      assert.equal(m.throughput.find((t) => t.stage === sink)?.metric, 'engage_sink_records_out_total', sink);
    }
    assert.ok(m.lags.some((l) => l.metric === 'engage_cdc_slot_retained_wal_bytes'));
    const top = await getJson<{ items: unknown[] }>('/top-content?limit=5');
    assert.equal(top.status, 200);
    assert.ok(top.body.items.length > 0);
  });

  it('serves samples for the core metrics the alerts and the Grafana dashboard use', async () => {
    const text = await waitFor(
      'records out of every sink',
      async () => (await fetch(`${apiUrl}/metrics/prometheus`)).text(),
      {
        until: (t) =>
          ['redis', 'warehouse', 'external'].every((sink) =>
            new RegExp(`^engage_sink_records_out_total\\{[^}]*sink="${sink}"[^}]*\\} [1-9]`, 'm').test(t),
          ),
        timeoutMs: 60_000,
        everyMs: 1000,
      },
    );
    for (const name of [
      'engage_cdc_rows_total',
      'engage_cdc_slot_retained_wal_bytes',
      'engage_processor_records_out_total',
      'engage_processor_consumer_lag',
      'engage_sink_records_out_total',
      'engage_sink_consumer_lag',
      'engage_sink_freshness_seconds_bucket',
      'engage_sink_external_circuit_state',
      'engage_health_component_up',
      'engage_health_service_up',
      'engage_health_slot_retained_wal_bytes',
      'engage_process_process_resident_memory_bytes',
    ]) {
      assert.match(text, new RegExp(`^${name}\\{[^}]*\\} [0-9.e+-]+$`, 'm'), `${name} has a sample`);
    }
    const alertExprs = [
      ...readFileSync(path.join(root, 'deploy', 'prometheus', 'alerts.yml'), 'utf8').matchAll(/^\s+expr:\s*(.+)$/gm),
    ].map((m) => m[1]);
    const panelExprs = [
      ...readFileSync(path.join(root, 'deploy', 'grafana', 'dashboard.json'), 'utf8').matchAll(
        /"expr": "([^"\\]*(?:\\.[^"\\]*)*)"/g,
      ),
    ].map((m) => m[1]);
    for (const [, name] of [...alertExprs, ...panelExprs].join('\n').matchAll(/\b(engage_[a-z0-9_]+)/g)) {
      const family = (name as string).replace(/_(bucket|sum|count)$/, '');
      assert.ok(
        text.includes(`# TYPE ${name} `) || text.includes(`# TYPE ${family} histogram`),
        `${name} in /metrics/prometheus`,
      );
    }
  });

  it('draws the whole pipeline on the dashboard', async (t) => {
    if (!existsSync('/usr/bin/chromium')) return t.skip('Chromium not installed (/usr/bin/chromium)');
    const profile = mkdtempSync(path.join(os.tmpdir(), 'engage-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1280, height: 1000 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await context.newPage();
      await page.goto(`${apiUrl}/`);
      await page.locator('#top-chart svg g.row').first().waitFor({ timeout: 30_000 });
      for (const stage of STAGES)
        await page.locator('#throughput tbody tr', { hasText: stage }).waitFor({ timeout: 30_000 });
      await waitFor('healthy pill', () => page.locator('#overall').innerText(), {
        until: (s) => s === 'healthy',
        timeoutMs: 30_000,
        everyMs: 500,
      });
      mkdirSync(path.join(root, 'test-output'), { recursive: true });
      await page.screenshot({ path: path.join(root, 'test-output', 'dashboard-pipeline.png'), fullPage: true });
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
