import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * One `engage <args>` command as its own process, from the repository's source (as the benches
 * measure it): resolves when it exits 0, rejects with the end of its stderr otherwise. `onPid`
 * hears its pid at once (a bench measures its CPU while it runs).
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function runEngage(
  args: string[],
  env: NodeJS.ProcessEnv,
  onPid?: (pid: number | undefined) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    onPid?.(p.pid);
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('exit', (code) => {
      onPid?.(undefined);
      if (code === 0) resolve();
      else reject(new Error(`engage ${args[0] ?? ''} exited ${code}: ${err.slice(-400)}`));
    });
  });
}
