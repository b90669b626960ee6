import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../src/core/logger.js';
import { startApi } from '../../src/api/start.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { redisClient } from './fixtures.js';
import { waitFor } from '../helpers/wait.js';

/** `startApi` on a real port, and `engage api` as a process: it listens, beats, and stops on SIGTERM. */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let env: TestEnv;

before(async () => {
  env = await createTestEnv();
});

after(async () => {
  await env.cleanup();
});

function childEnv(): NodeJS.ProcessEnv {
  const c = env.config;
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: c.databaseUrl,
    KAFKA_BOOTSTRAP_SERVERS: c.kafkaBrokers.join(','),
    REDIS_URL: c.redisUrl,
    REDIS_KEY_PREFIX: c.REDIS_KEY_PREFIX,
    CDC_SLOT_NAME: c.CDC_SLOT_NAME,
    STACK_DIR: c.STACK_DIR,
    LOG_LEVEL: 'warn',
  };
}

describe('startApi', () => {
  it('listens on a free port, answers over HTTP with keep-alive, and stops', async () => {
    const api = await startApi({ ...env.config, API_PORT: 0 }, createLogger('silent', 'engage-api-test'));
    try {
      assert.match(api.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const live = await fetch(`${api.url}/health/live`);
      assert.equal(live.status, 200);
      const top = await fetch(`${api.url}/top-content?limit=3`);
      assert.equal(top.status, 200);
      assert.deepEqual((await top.json()).items, []);
      assert.deepEqual(api.status?.(), { url: api.url });
    } finally {
      await api.stop();
    }
    await assert.rejects(fetch(`${api.url}/health/live`));
  });

  it('says which port is taken', async () => {
    const first = await startApi({ ...env.config, API_PORT: 0 }, createLogger('silent', 'engage-api-test'));
    try {
      await assert.rejects(
        startApi({ ...env.config, API_PORT: first.port }, createLogger('silent', 'engage-api-test')),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'SERVICE_MISCONFIGURED');
          assert.match(err.message, new RegExp(`port ${first.port} .* is taken`));
          return true;
        },
      );
    } finally {
      await first.stop();
    }
  });
});

describe('engage api', () => {
  it('rejects a bad --port with a usage error (exit 2)', () => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'api', '--port', 'abc'], {
      cwd: root,
      env: childEnv(),
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(res.status, 2, res.stderr);
    assert.match(res.stderr, /--port accepts a whole number from 0 to 65535/);
  });

  it('runs as a component: prints its URL, publishes a heartbeat, stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'api', '--port', '0'], {
      cwd: root,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const redis = await redisClient(env.config);
    try {
      const url = await waitFor('listening line', async () => /listening on (http:\S+)/.exec(stdout)?.[1], {
        until: (u) => u !== undefined,
        timeoutMs: 30_000,
      });
      const res = await fetch(`${url}/metrics`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { components: Array<{ component: string }> };
      assert.ok(body.components.some((c) => c.component === 'api'));
      const keys = await waitFor('api heartbeat', () => redis.keys(`${env.config.REDIS_KEY_PREFIX}hb:api:*`), {
        until: (k) => k.length === 1,
        timeoutMs: 10_000,
      });
      // Its own heartbeat is replaced by its live registry: the process appears once in /metrics/prometheus.
      const text = await (await fetch(`${url}/metrics/prometheus`)).text();
      const instances = new Set([...text.matchAll(/instance_id="([^"]+)"/g)].map((m) => m[1]));
      assert.equal(instances.size, 1, [...instances].join(', '));
      assert.match(text, /^engage_process_process_cpu_user_seconds_total\{[^}]*component="api"[^}]*\} [\d.e-]+$/m);
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0, stderr);
      assert.equal(await redis.exists(keys[0] as string), 0, 'the heartbeat is removed on stop');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await redis.close();
    }
  });
});
