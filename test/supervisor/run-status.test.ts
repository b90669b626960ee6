import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Counter, Gauge, Registry } from 'prom-client';
import type { MetricsSummary } from '../../src/api/metrics/summary.js';
import { generateBatch } from '../../src/generator/modes.js';
import { formatFigures, RunFigures, stageFigures } from '../../src/supervisor/run-figures.js';
import { SupervisedChild } from '../../src/supervisor/child.js';
import { formatStatus, stopOrder } from '../../src/supervisor/supervisor.js';
import { heartbeatOf, publish, redisClient, wipePrefix, type TestRedis } from '../api/fixtures.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * `engage run`'s status lines: each running stage's figures (moved, rate, lag, freshness p99,
 * DLQ) from the pipeline's heartbeats, and a real `engage run` that shows the events it moved and
 * stops every component cleanly on SIGINT.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');

function summary(parts: Partial<MetricsSummary>): MetricsSummary {
  return {
    generated_at: '',
    uptime_seconds: 0,
    rate_window_seconds: 10,
    components: [],
    throughput: [],
    lags: [],
    freshness: [],
    dlq: [],
    dlq_total: 0,
    ...parts,
  };
}

describe('status-line figures (pure)', () => {
  it("takes each stage's flow, preferred lag, window p99 and DLQ total", () => {
    const figures = stageFigures(
      summary({
        throughput: [
          { stage: 'cdc', metric: 'engage_cdc_rows_total', total: 12345, per_second: 980.4 },
          { stage: 'sink-redis', metric: 'engage_sink_records_out_total', total: 12000, per_second: null },
        ],
        lags: [
          { stage: 'cdc', metric: 'engage_cdc_replication_lag_bytes', unit: 'bytes', value: 4096 },
          { stage: 'cdc', metric: 'engage_cdc_slot_retained_wal_bytes', unit: 'bytes', value: 1 },
          { stage: 'cdc', metric: 'engage_cdc_replication_lag_ms', unit: 'ms', value: 13 },
          { stage: 'sink-redis', metric: 'engage_sink_consumer_lag', unit: 'records', value: 345 },
          { stage: 'api', metric: 'engage_api_lag', unit: 'records', value: 9 },
        ],
        freshness: [
          {
            stage: 'sink-redis',
            metric: 'engage_sink_freshness_seconds',
            basis: 'window',
            count: 40,
            p50: 0.2,
            p95: 0.4,
            p99: 0.45,
            unit: 'seconds',
            target_seconds: 5,
          },
        ],
        dlq: [
          { stage: 'sink-redis', metric: 'engage_sink_dlq_total', total: 2, per_second: 0 },
          { stage: 'sink-redis', metric: 'engage_sink_redis_dlq_total', total: 1, per_second: 0 },
        ],
      }),
    );
    assert.deepEqual([...figures.keys()], ['cdc', 'sink-redis'], 'only stages that move records');
    assert.equal(formatFigures(figures.get('cdc')!), '12,345 (980/s)  lag 13 ms  dlq 0');
    assert.equal(formatFigures(figures.get('sink-redis')!), '12,000 (…/s)  lag 345  p99 450 ms  dlq 3');
  });

  it('appends the figures to running components only', () => {
    const figures = stageFigures(
      summary({
        throughput: [{ stage: 'processor', metric: 'engage_processor_records_out_total', total: 7, per_second: 1 }],
      }),
    );
    const base = {
      pid: 10,
      restarts: 0,
      since: 0,
      lastExit: undefined,
      lastError: undefined,
      crashes: 0,
      crashLoop: false,
      notRestarted: undefined,
      log: '',
    };
    const text = formatStatus(
      [
        { ...base, name: 'processor', state: 'running' },
        { ...base, name: 'cdc', state: 'running' },
      ],
      65_000,
      figures,
    ).split('\n');
    assert.match(text[0] ?? '', /^ {2}processor +running +pid 10 +65s {2}restarts 0 {3}7 \(1\/s\) {2}dlq 0$/);
    assert.match(text[1] ?? '', /restarts 0$/, 'a stage without figures keeps the bare line');
    const stopped = formatStatus(
      [{ ...base, name: 'processor', state: 'stopped', pid: undefined, lastExit: 'exit 0' }],
      65_000,
      figures,
    );
    assert.doesNotMatch(stopped, /dlq/);
  });
});

describe('a stopped component', () => {
  it('is shown with the time since it stopped, not since it started', { timeout: 30_000 }, async () => {
    const logs = mkdtempSync(path.join(os.tmpdir(), 'engage-stopped-'));
    const child = new SupervisedChild(
      { name: 'idle', args: [] },
      { node: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] },
      logs,
    );
    try {
      child.start();
      // Time running is the point: the start and the stop must be far enough apart to tell apart.
      await sleep(2500);
      assert.equal(child.status().state, 'running');
      const startedAt = child.status().since;
      const stopCalled = Date.now();
      await child.stop();
      const status = child.status();
      assert.equal(status.state, 'stopped');
      assert.equal(status.lastExit, 'signal SIGTERM');
      assert.ok(
        status.since >= stopCalled,
        `since ${status.since - startedAt} ms after the start, the stop was called ${stopCalled - startedAt} ms after it`,
      );
      assert.match(formatStatus([status], status.since + 400), /stopped +pid - +0s/);
    } finally {
      await child.stop();
      rmSync(logs, { recursive: true, force: true });
    }
  });
});

describe('status figures from heartbeats in Redis', () => {
  let env: TestEnv;
  let redis: TestRedis;
  before(async () => {
    env = await createTestEnv();
    redis = await redisClient(env.config);
  });
  after(async () => {
    await wipePrefix(redis, env.config.REDIS_KEY_PREFIX);
    await redis.close();
    await env.cleanup();
  });

  it('rates come from successive heartbeats; an unreachable Redis gives no figures', async () => {
    const registry = new Registry();
    const out = new Counter({ name: 'engage_processor_records_out_total', help: 'out', registers: [registry] });
    const lag = new Gauge({ name: 'engage_processor_consumer_lag', help: 'lag', registers: [registry] });
    const figures = new RunFigures(env.config.redisUrl, env.config.REDIS_KEY_PREFIX);
    const t0 = Date.now();
    out.inc(100);
    lag.set(40);
    await publish(redis, env.config, await heartbeatOf('processor', 'a', registry, { sentAt: t0 - 4000 }));
    const first = (await figures.sample(t0)).get('processor');
    assert.deepEqual(first, { total: 100, perSecond: null, lag: { value: 40, unit: 'records' }, p99: null, dlq: 0 });
    out.inc(600);
    lag.set(0);
    await publish(redis, env.config, await heartbeatOf('processor', 'a', registry, { sentAt: t0 }));
    const second = (await figures.sample(t0)).get('processor');
    assert.equal(second?.total, 700);
    assert.equal(second?.perSecond, 150, '600 more records in 4 s');
    assert.deepEqual(second?.lag, { value: 0, unit: 'records' });
    await figures.close();

    const nowhere = new RunFigures('redis://127.0.0.1:1', env.config.REDIS_KEY_PREFIX);
    assert.equal((await nowhere.sample()).size, 0);
    await nowhere.close();
  });
});

it('stops upstream first, so each stage drains into the next before that one stops', () => {
  const started = [
    'external-receiver',
    'cdc',
    'processor',
    'sink-redis',
    'sink-warehouse',
    'sink-external',
    'api',
    'generator',
  ];
  assert.deepEqual(stopOrder(started), [
    'generator',
    'cdc',
    'processor',
    'sink-redis',
    'sink-warehouse',
    'sink-external',
    'api',
    'external-receiver',
  ]);
});

describe('engage run', () => {
  let env: TestEnv;
  let cwd: string;
  before(async () => {
    env = await createTestEnv();
    cwd = mkdtempSync(path.join(os.tmpdir(), 'engage-run-'));
  });
  after(async () => {
    rmSync(cwd, { recursive: true, force: true });
    await env.cleanup();
  });

  it('refuses a status interval it cannot use, before starting anything', () => {
    const res = spawnSync(process.execPath, [path.join(ROOT, 'bin/engage.mjs'), 'run', '--status-every', 'soon'], {
      cwd,
      env: { ...process.env, ...env.env },
      encoding: 'utf8',
    });
    assert.equal(res.status, 2, res.stderr);
    assert.match(res.stderr, /--status-every accepts a number of seconds, 1 or more \(got "soon"\)/);
    assert.doesNotMatch(res.stdout, /bringing the stack up/);
  });

  it('refuses, before starting anything, a receiver or API port another process holds (exit 78: no restart helps)', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      // The kernel completes the probe's connection from its backlog while spawnSync blocks this loop.
      const engageRun = (args: string[], extra: Record<string, string>) =>
        spawnSync(process.execPath, [path.join(ROOT, 'bin/engage.mjs'), 'run', ...args], {
          cwd,
          env: { ...process.env, ...env.env, ...extra },
          encoding: 'utf8',
        });
      const receiver = engageRun(['--with-receiver', '--no-api'], { EXTERNAL_RECEIVER_PORT: String(port) });
      assert.equal(receiver.status, 78, receiver.stderr);
      assert.match(
        receiver.stderr,
        new RegExp(
          `SERVICE_MISCONFIGURED: port ${port} on 127\\.0\\.0\\.1, for the reference receiver .* is taken by another process.*: stop it or set EXTERNAL_RECEIVER_PORT`,
        ),
      );
      assert.doesNotMatch(receiver.stdout, /bringing the stack up/);
      const api = engageRun([], { API_PORT: String(port) });
      assert.equal(api.status, 78, api.stderr);
      assert.match(
        api.stderr,
        new RegExp(
          `port ${port} on 127\\.0\\.0\\.1, for the monitoring API, is taken .*set API_PORT \\(or run with --no-api\\)`,
        ),
      );
    } finally {
      holder.close();
    }
  });

  it("prints each stage's figures and stops every component cleanly on SIGINT", { timeout: 180_000 }, async () => {
    const run = spawn(
      process.execPath,
      [path.join(ROOT, 'bin/engage.mjs'), 'run', '--sinks', 'redis', '--no-api', '--status-every', '1'],
      {
        cwd,
        env: { ...process.env, ...env.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    run.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    run.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => run.once('exit', (code) => resolve(code)));
    const until = (what: string, re: RegExp) =>
      waitFor(
        what,
        () => {
          if (run.exitCode !== null)
            assert.fail(`engage run exited (${run.exitCode}) before ${what}\n${stdout}\n${stderr}`);
          return re.test(stdout);
        },
        { timeoutMs: 120_000, everyMs: 200, describe: () => `…${stdout.slice(-1000)}\n…${stderr.slice(-800)}` },
      );
    try {
      await until('sink-redis running', /sink-redis +running/);
      const events = (await generateBatch(env.config, { batchSize: 500, seed: 3 })).rows;
      assert.ok(events >= 500, `generated ${events} rows`);
      // Every generated row reaches Redis (none is bad), so the figures settle at the row count,
      // and at lag 0 (the trailing transaction markers count as settled).
      const settled = new RegExp(
        `sink-redis +running +pid \\d+ +\\d+s {2}restarts 0 {3}${events.toLocaleString('en-US')} \\((\\d+|…)/s\\) {2}lag 0 .*dlq 0`,
      );
      await until(`sink-redis figures at ${events}`, settled);
      assert.match(
        stdout,
        new RegExp(`processor +running .* {3}${events.toLocaleString('en-US')} \\(`),
        'the processor line counts the same events',
      );
      assert.match(stdout, /Ctrl-C stops everything cleanly\.\n/, 'the banner ends its line');
    } finally {
      run.kill('SIGINT');
    }
    assert.equal(await exited, 0, stderr);
    assert.match(stdout, /engage run: stopped\.\n$/);
    for (const name of ['cdc', 'processor', 'sink-redis'])
      assert.match(stdout, new RegExp(`${name} +stopped .*last exit 0`), `${name} stopped cleanly`);
  });
});
