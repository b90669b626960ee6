import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { waitFor } from '../helpers/wait.js';

/**
 * A component never outlives the process that launched it: started by `engage run`, it stops by
 * itself when the supervisor dies without stopping it (SIGKILL, or a signal that never reached
 * it); started by the `engage` command (bin/engage.mjs), it stops when that wrapper is SIGKILLed.
 * Left running, it would keep the CDC slot and the consumer groups from the next run.
 */

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('components exit once their supervisor is SIGKILLed', { timeout: 60_000 }, async (t) => {
  const logs = mkdtempSync(path.join(os.tmpdir(), 'engage-orphan-'));
  t.after(() => rmSync(logs, { recursive: true, force: true }));
  const parent = spawn(process.execPath, ['--import', 'tsx', 'test/supervisor/fixtures/orphan-parent.ts', logs], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    parent.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    parent.once('exit', (code) => reject(new Error(`supervisor exited early (${code})`)));
  });
  const child = JSON.parse(line) as { pid: number };
  assert.ok(alive(child.pid), 'the component runs');
  parent.kill('SIGKILL');
  // A timeout here is the failure the assertion below names.
  await waitFor('the component to exit', () => !alive(child.pid), { timeoutMs: 20_000, everyMs: 200 }).catch(
    () => undefined,
  );
  const gone = !alive(child.pid);
  if (!gone) process.kill(child.pid, 'SIGKILL');
  assert.ok(gone, `component ${child.pid} still running 20 s after its supervisor died`);
});

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test(
  'a component started by the engage command drains and exits once that wrapper is SIGKILLed',
  { timeout: 60_000 },
  async (t) => {
    const wrapper = spawn(process.execPath, [path.join(ROOT, 'bin/engage.mjs'), 'external-receiver', '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    wrapper.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // The component's own pid, from its "running" log line (the wrapper's child: the CLI).
    const running = /"pid":(\d+),"name":"engage-external-receiver","msg":"external-receiver running"/;
    await waitFor(
      'the receiver to log "running"',
      () => {
        if (wrapper.exitCode !== null)
          assert.fail(`engage exited (${wrapper.exitCode}) before the receiver ran\n${stderr}`);
        return running.test(stderr);
      },
      { timeoutMs: 30_000, describe: () => stderr.slice(-1800) },
    );
    const pid = Number(running.exec(stderr)?.[1]);
    t.after(() => {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    });
    assert.notEqual(pid, wrapper.pid, "the component is the wrapper's child, not the wrapper");
    wrapper.kill('SIGKILL');
    // A timeout here is the failure the assertion below names.
    await waitFor('the component to exit', () => !alive(pid), 20_000).catch(() => undefined);
    assert.ok(!alive(pid), `component ${pid} still running 20 s after the engage wrapper was SIGKILLed\n${stderr}`);
    assert.match(
      stderr,
      new RegExp(`engage: the process that launched this command \\(pid ${wrapper.pid}\\) is gone; stopping`),
    );
    assert.match(stderr, /"msg":"external-receiver stopped"/, 'it stopped cleanly (drained), not killed');
  },
);
