import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * `engage external-receiver` as a user runs it: a separate process that prints its URL, injects
 * the failures given as flags, accepts POST /control, and stops cleanly on SIGTERM. The process
 * publishes heartbeats to Redis, so it runs under the test environment's key prefix.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let env: TestEnv;
let child: ChildProcess | undefined;

before(async () => {
  env = await createTestEnv();
});
after(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await env.cleanup();
});

function waitForUrl(proc: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`no "listening on" within ${timeoutMs} ms; stdout: ${out}`)),
      timeoutMs,
    );
    proc.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before listening; stdout: ${out}`));
    });
  });
}

function exitCode(proc: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    const timer = setTimeout(() => reject(new Error(`did not exit within ${timeoutMs} ms`)), timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

describe('engage external-receiver', () => {
  it('serves with the flagged failures, takes control changes, and stops on SIGTERM', async () => {
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'external-receiver',
        '--port',
        '0',
        '--fail-rate',
        '1',
        '--status',
        '429',
        '--retry-after',
        '3',
      ],
      {
        cwd: root,
        env: {
          ...process.env,
          REDIS_KEY_PREFIX: `${env.id}:`,
          LOG_LEVEL: 'warn',
          EXTERNAL_API_AUTH_HEADER: 'Authorization: Bearer cli-test',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const url = await waitForUrl(child, 45_000);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/events$/);
    const post = () =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'k', authorization: 'Bearer cli-test' },
        body: JSON.stringify({ events: [{ event_id: '1' }] }),
      });
    const failed = await post();
    assert.equal(failed.status, 429);
    assert.equal(failed.headers.get('retry-after'), '3');
    const base = url.replace(/\/events$/, '');
    await fetch(`${base}/control`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"failRate":0}',
    });
    assert.equal((await post()).status, 200);
    const stats = (await (await fetch(`${base}/stats`)).json()) as { events_unique: number; failures_injected: number };
    assert.equal(stats.events_unique, 1);
    assert.equal(stats.failures_injected, 1);
    child.kill('SIGTERM');
    assert.equal(await exitCode(child, 15_000), 0);
  });
});
