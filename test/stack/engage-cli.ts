import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../src/stack/stack.js';

/**
 * Runs `engage <args>` and collects its output: in the repository with this environment by default,
 * or with exactly `env` (beside PATH and HOME) in `dir`, where no `.env` is read.
 */
export function engage(
  args: string[],
  env: Record<string, string> | undefined,
  dir: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'engage.mjs'), ...args], {
      cwd: env ? dir : REPO_ROOT,
      env: env ? { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env } : process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}
