/**
 * A component's own health endpoint (src/runtime/health-endpoint.ts) and how runComponent serves
 * it under HEALTH_PORT: the verdicts follow the heartbeat status's liveness rules (the ones the
 * API's /health applies), readiness waits for start and an assignment, and the port is released
 * when the component stops.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { componentHealth, startHealthEndpoint } from '../../src/runtime/health-endpoint.js';
import { runComponent, type RunningComponent } from '../../src/runtime/lifecycle.js';
import { waitFor } from '../helpers/wait.js';

const running = (status: Record<string, unknown>) => ({ phase: 'running' as const, status: () => status });

test('verdicts: starting is live and not ready; running follows liveness and the partitions held', () => {
  const starting = componentHealth({ phase: 'starting', status: () => ({}) });
  assert.deepEqual([starting.live.ok, starting.ready.ok], [true, false]);
  const cdcLike = componentHealth(running({ phase: 'streaming' }));
  assert.deepEqual([cdcLike.live.ok, cdcLike.ready.ok, cdcLike.partitions], [true, true, null]);
  const sink = componentHealth(running({ partitions: [0, 3], liveness: { ok: true, reasons: [] } }));
  assert.deepEqual([sink.live.ok, sink.ready.ok, sink.partitions], [true, true, [0, 3]]);
  const joining = componentHealth(running({ assigned: [] }));
  assert.deepEqual([joining.live.ok, joining.ready.ok], [true, false]);
  assert.match(joining.ready.reasons.join(), /no partition/);
  const starved = componentHealth(running({ partitions: [], liveness: { ok: false, reasons: ['starved 40 s'] } }));
  assert.deepEqual([starved.live.ok, starved.ready.ok, starved.live.reasons], [false, false, ['starved 40 s']]);
  // An outage waited out is progress of a kind: live (the API reports it degraded, not down).
  const waiting = componentHealth(running({ partitions: [1], waiting_since: new Date().toISOString() }));
  assert.deepEqual([waiting.live.ok, waiting.ready.ok], [true, true]);
  const stopping = componentHealth({ phase: 'stopping', status: () => ({ partitions: [1] }) });
  assert.deepEqual([stopping.live.ok, stopping.ready.ok], [true, false]);
  const broken = componentHealth({
    phase: 'running',
    status: () => {
      throw new Error('boom');
    },
  });
  assert.equal(broken.live.ok, false);
  assert.match(broken.live.reasons.join(), /boom/);
});

test('the endpoint answers /health/live, /health/ready and /health with 200 or 503, and 404 elsewhere', async () => {
  let status: Record<string, unknown> = { partitions: [2] };
  const ep = await startHealthEndpoint('sink-x', '127.0.0.1', 0, () => running(status));
  try {
    const get = async (p: string) => {
      const res = await fetch(`http://127.0.0.1:${ep.port}${p}`);
      return { code: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    assert.equal((await get('/health/live')).code, 200);
    const ready = await get('/health/ready');
    assert.deepEqual([ready.code, ready.body.ready, ready.body.partitions], [200, true, [2]]);
    status = { partitions: [2], liveness: { ok: false, reasons: ['partition 2 has lag and made no progress'] } };
    const live = await get('/health/live');
    assert.deepEqual(
      [live.code, live.body.live, live.body.reasons],
      [503, false, ['partition 2 has lag and made no progress']],
    );
    assert.equal((await get('/health')).code, 503);
    assert.equal((await get('/metrics')).code, 404);
  } finally {
    await ep.close();
  }
});

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test('runComponent serves HEALTH_PORT from before start until stopped', async () => {
  const port = await freePort();
  // No Redis at this address: the heartbeat skips its beats, which the endpoint does not need.
  const config = { ...loadConfig({ REDIS_URL: 'redis://127.0.0.1:1' }, '/nonexistent'), HEALTH_PORT: port };
  const code = async (p: string) =>
    fetch(`http://127.0.0.1:${port}${p}`).then(
      (r) => r.status,
      () => 0,
    );
  let connected!: () => void;
  let finish!: () => void;
  let partitions: number[] = [];
  const run = runComponent('health-test', config, async () => {
    await new Promise<void>((resolve) => (connected = resolve));
    return {
      done: new Promise<void>((resolve) => (finish = resolve)),
      status: () => ({ partitions }),
      stop: async () => undefined,
    } satisfies RunningComponent;
  });
  await waitFor('the endpoint while starting', async () => (await code('/health/live')) === 200, {
    timeoutMs: 5000,
    everyMs: 20,
  });
  assert.equal(await code('/health/ready'), 503, 'not ready before start returns');
  connected();
  const ready = async () =>
    (await fetch(`http://127.0.0.1:${port}/health/ready`)).json() as Promise<{
      ready: boolean;
      phase: string;
      reasons: string[];
    }>;
  await waitFor('started', async () => (await ready()).phase === 'running', { timeoutMs: 5000, everyMs: 20 });
  const holding = await ready();
  assert.equal(holding.ready, false, 'not ready while it holds no partition');
  assert.deepEqual(holding.reasons, ['holds no partition (yet)']);
  partitions = [0];
  await waitFor('ready', async () => (await code('/health/ready')) === 200, { timeoutMs: 5000, everyMs: 20 });
  finish();
  await run;
  assert.equal(await code('/health/live'), 0, 'the port is released once stopped');
});
