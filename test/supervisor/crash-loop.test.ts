import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createClient } from 'redis';
import { parseHeartbeat, readHeartbeats, type LiveHeartbeat } from '../../src/api/heartbeats.js';
import { evaluateHealth, type HealthReport } from '../../src/api/health/evaluate.js';
import { loadConfig } from '../../src/config/load.js';
import { SupervisedChild, type ChildStatus } from '../../src/supervisor/child.js';
import { CrashRecord, errorSummary } from '../../src/supervisor/restart-policy.js';
import {
  SUPERVISOR_COMPONENT,
  startSupervisorHeartbeat,
  supervisorStatus,
} from '../../src/supervisor/run-heartbeat.js';
import { formatStatus, Supervisor } from '../../src/supervisor/supervisor.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `engage run` ends crash loops: a component that ends with a fatal error (exit 2 or 78: usage,
 * configuration, a misconfigured service) is not restarted and says why; one that keeps crashing
 * is restarted with a growing backoff and reported as a crash loop — in the terminal, in its
 * status line and, through the supervisor's heartbeat, in /health.
 */

/** /health's verdict on these heartbeats, every service up and no stage expected. */
function healthOf(heartbeats: LiveHeartbeat[], nowMs: number): HealthReport {
  const up = { ok: true, latency_ms: 1 };
  return evaluateHealth({
    nowMs,
    postgres: { ...up, slot: null },
    kafka: up,
    redis: up,
    heartbeats,
    expected: [],
    walWarnBytes: 1024,
    warehouseBackend: 'duckdb',
  });
}

describe('restart policy (pure)', () => {
  it('backs off on crashes within the window even when each ran longer than the stable time', () => {
    const record = new CrashRecord(60_000, 3);
    const top = () => 0.999999;
    // Each crash after 40 s of running (stable: 30 s): in a row stays 1, the window count grows.
    const delays = [0, 1, 2, 3].map((i) => record.crashed(i * 20_000, 40_000, 30_000, top));
    assert.deepEqual(
      delays,
      [499, 999, 1999, 1999],
      'attempts 1, 2, 3, then 3 again: the first crash left the 60 s window',
    );
    assert.equal(record.recent(60_000), 3);
    assert.equal(record.isLoop(60_000), true);
    assert.equal(record.isLoop(100_001), false, 'the loop ends once the crashes leave the window');
  });

  it('takes the CLI error line and the lines under it, not the last line alone', () => {
    const tail =
      '{"level":30,"msg":"starting"}\nengage: CONFIG_INVALID: Invalid configuration:\n  BATCH_SIZE="abc": accepts a whole number\nSee .env.example.\n';
    assert.equal(
      errorSummary(tail),
      'engage: CONFIG_INVALID: Invalid configuration: BATCH_SIZE="abc": accepts a whole number See .env.example.',
    );
    assert.equal(errorSummary('one\ntwo\n\n'), 'two');
    assert.equal(errorSummary(''), undefined);
  });
});

describe('a component that ends with a fatal error', () => {
  it('is not restarted, and its status, the log and the status line say why', { timeout: 60_000 }, async () => {
    const logs = mkdtempSync(path.join(os.tmpdir(), 'engage-fatal-'));
    const ended: Array<{ status: ChildStatus; ms: number | null }> = [];
    const sup = new Supervisor(
      [
        { name: 'sink-nope', args: ['sink', 'nope'] },
        { name: 'external-receiver', args: ['external-receiver', '--port', '0'], env: { BATCH_SIZE: 'abc' } },
      ],
      logs,
      {},
      (status, ms) => ended.push({ status, ms }),
    );
    try {
      sup.start();
      await waitFor('two ends', () => ended.length >= 2, 45_000);
      const byName = new Map(ended.map((e) => [e.status.name, e]));
      const usage = byName.get('sink-nope');
      assert.equal(usage?.ms, null, 'not restarted');
      assert.equal(usage?.status.lastExit, 'exit 2');
      assert.match(usage?.status.notRestarted ?? '', /^engage: USAGE: unknown sink "nope"/);
      const config = byName.get('external-receiver');
      assert.equal(config?.ms, null, 'not restarted');
      assert.equal(config?.status.lastExit, 'exit 78');
      assert.match(
        config?.status.notRestarted ?? '',
        /^engage: CONFIG_INVALID: Invalid configuration: BATCH_SIZE="abc": accepts/,
      );
      for (const s of sup.status()) {
        assert.equal(s.state, 'failed', `${s.name} stays failed`);
        assert.equal(s.restarts, 0, `${s.name} was not restarted`);
      }
      assert.match(
        formatStatus(sup.status()),
        /sink-nope +failed .*last exit 2 {2}not restarted: engage: USAGE: unknown sink "nope"/,
      );
      assert.match(
        readFileSync(path.join(logs, 'external-receiver.log'), 'utf8'),
        /\[supervisor\] external-receiver ended \(exit 78\): not restarting it, a restart cannot fix this: engage: CONFIG_INVALID/,
      );
    } finally {
      await sup.stop();
      rmSync(logs, { recursive: true, force: true });
    }
    assert.deepEqual(
      sup.status().map((s) => s.state),
      ['failed', 'failed'],
      'a stop keeps them failed',
    );
  });
});

describe('a component that keeps crashing', () => {
  it('is restarted with backoff and reported as a crash loop, up to /health', { timeout: 60_000 }, async () => {
    const logs = mkdtempSync(path.join(os.tmpdir(), 'engage-crashloop-'));
    const ended: Array<{ status: ChildStatus; ms: number | null }> = [];
    // A stand-in component that fails as the CLI does (exit 1: a restart may help).
    const crash = `process.stderr.write('engage: SINK_WRITE_FAILED: disk full\\n'); process.exit(1)`;
    const child = new SupervisedChild(
      { name: 'sink-warehouse', args: [] },
      { node: process.execPath, args: ['-e', crash] },
      logs,
      30_000,
      (status, ms) => ended.push({ status, ms }),
      new CrashRecord(60_000, 3, { attempts: Number.POSITIVE_INFINITY, baseMs: 50, maxMs: 400, jitter: 'none' }),
    );
    const config = { ...loadConfig(), REDIS_KEY_PREFIX: `crashloop-${randomBytes(4).toString('hex')}:` };
    const redis = createClient({ url: config.redisUrl });
    redis.on('error', () => undefined);
    await redis.connect();
    const heartbeat = startSupervisorHeartbeat(config, () => [child.status()]);
    try {
      child.start();
      await waitFor('a third crash', () => ended.length >= 3, 45_000);
      assert.deepEqual(
        ended.slice(0, 3).map((e) => e.ms),
        [50, 100, 200],
        'the backoff doubles',
      );
      const third = ended[2]?.status;
      assert.equal(third?.crashLoop, true);
      assert.equal(third?.crashes, 3);
      assert.equal(third?.restarts, 2);
      assert.equal(third?.lastError, 'engage: SINK_WRITE_FAILED: disk full');
      assert.equal(ended[1]?.status.crashLoop, false, 'two crashes are not a loop yet');
      assert.match(
        readFileSync(path.join(logs, 'sink-warehouse.log'), 'utf8'),
        /ended \(exit 1\) \(crash loop: 3 crashes in 1 min\); restarting in 200 ms/,
      );
      assert.match(
        formatStatus([child.status()]),
        /sink-warehouse .*restarts \d+ {2}last exit 1 {2}crash loop: \d+ crashes in 10 min/,
      );

      // /health: the supervisor's heartbeat, as published to Redis and read back by the API.
      let last: HealthReport | undefined;
      const seen = await waitFor(
        'a crash-loop warning in /health',
        async () => {
          last = healthOf(await readHeartbeats(redis, config.REDIS_KEY_PREFIX), Date.now());
          return last.warnings.some((w) => w.includes('crash loop')) && last;
        },
        { timeoutMs: 15_000, everyMs: 200, describe: () => last?.warnings },
      );
      assert.equal(seen.status, 'degraded');
      assert.match(
        seen.warnings.find((w) => w.includes('crash loop')) ?? '',
        /^component sink-warehouse \(engage run on .*, pid \d+\): crash loop, \d+ crashes in 10 min, restarted with backoff; last: engage: SINK_WRITE_FAILED: disk full$/,
      );
      assert.equal(seen.stages[SUPERVISOR_COMPONENT]?.ok, true, 'the supervisor is a live stage');
    } finally {
      await child.stop();
      await heartbeat.stop();
      await redis.quit();
      rmSync(logs, { recursive: true, force: true });
    }
  });

  it('a component left down after a fatal error is a /health problem (pure)', () => {
    const base = { pid: undefined, restarts: 0, since: 0, lastExit: 'exit 78', crashes: 1, crashLoop: false, log: '' };
    const rows: ChildStatus[] = [
      {
        ...base,
        name: 'cdc',
        state: 'failed',
        lastError: 'engage: SERVICE_MISCONFIGURED: wal_level = replica',
        notRestarted: 'engage: SERVICE_MISCONFIGURED: wal_level = replica',
      },
    ];
    const now = Date.now();
    const hb = parseHeartbeat(
      JSON.stringify({
        component: SUPERVISOR_COMPONENT,
        instance: 'h-1',
        pid: 7,
        host: 'h',
        started_at: new Date(now).toISOString(),
        sent_at: new Date(now).toISOString(),
        status: supervisorStatus(rows),
        metrics: [],
      }),
    );
    assert.ok(hb);
    const report = healthOf([hb], now);
    assert.equal(report.status, 'unhealthy');
    assert.deepEqual(report.problems, [
      'component cdc (engage run on h, pid 7): not restarted after a fatal error: engage: SERVICE_MISCONFIGURED: wal_level = replica',
    ]);
  });
});
