import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

/**
 * A component started by `engage run` stops by itself when the supervisor dies without stopping
 * it (SIGKILL, or a signal that never reached it): left running, it would keep the CDC slot and
 * the consumer groups from the next run.
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
  const parent = spawn(process.execPath, ['--import', 'tsx', 'test/supervisor/fixtures/orphan-parent.ts', logs], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  const deadline = Date.now() + 20_000;
  while (alive(child.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const gone = !alive(child.pid);
  if (!gone) process.kill(child.pid, 'SIGKILL');
  assert.ok(gone, `component ${child.pid} still running 20 s after its supervisor died`);
});
