import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { PipelineError } from '../core/errors.js';
import { tcpOpen } from '../core/net.js';

/** Helpers for the processes the stack starts: detached spawns, liveness, stop, readiness polls. */

/** Children of this process that have exited (a zombie still answers kill(pid, 0)). */
const exited = new Set<number>();

export function isAlive(pid: number | undefined): boolean {
  if (!pid || exited.has(pid)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this system user (needed for PostgreSQL, which refuses to run as root). */
  asUser?: string;
}

/** Starts `cmd` detached from this process, its output appended to `logFile`. Returns the pid. */
export function spawnDetached(cmd: string, args: string[], logFile: string, opts: SpawnOptions = {}): number {
  const fd = openSync(logFile, 'a');
  const [file, argv] = opts.asUser ? ['runuser', ['-u', opts.asUser, '--', cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.on('exit', () => {
    if (child.pid) exited.add(child.pid);
  });
  child.unref();
  if (!child.pid) throw new PipelineError('STACK_START_FAILED', `could not start ${cmd}; see ${logFile}`);
  return child.pid;
}

/** Runs a command to completion; throws with its output (and the log to read) when it fails. */
export function runChecked(cmd: string, args: string[], what: string, opts: SpawnOptions = {}): string {
  const [file, argv] = opts.asUser ? ['runuser', ['-u', opts.asUser, '--', cmd, ...args]] : [cmd, args];
  const res = spawnSync(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8' });
  if (res.status !== 0) {
    const out = `${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? String(res.error) : ''}`.trim();
    throw new PipelineError('STACK_START_FAILED', `${what} failed (exit ${res.status}):\n${out.slice(-2000)}`);
  }
  return res.stdout;
}

/**
 * Like runChecked, without blocking the event loop: `stack up` starts the three services
 * concurrently, and a synchronous Maven run or initdb would stall the others' readiness probes
 * (their connect timeouts then fire spuriously).
 */
export function runCheckedAsync(cmd: string, args: string[], what: string, opts: SpawnOptions = {}): Promise<string> {
  const [file, argv] = opts.asUser ? ['runuser', ['-u', opts.asUser, '--', cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(new PipelineError('STACK_START_FAILED', `${what} failed: ${String(e)}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else
        reject(
          new PipelineError(
            'STACK_START_FAILED',
            `${what} failed (exit ${code}):\n${`${out}${err}`.trim().slice(-2000)}`,
          ),
        );
    });
  });
}

export { tcpOpen };

/**
 * Who listens on a local TCP port, as "<command>, pid <n>", for a "port taken" message; null
 * when `ss` (iproute2) is missing or does not say (another user's process, without root).
 */
export function portHolder(port: number): string | null {
  const res = spawnSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8', timeout: 3000 });
  if (res.status !== 0 || typeof res.stdout !== 'string') return null;
  const m = /users:\(\("([^"]+)",pid=(\d+)/.exec(res.stdout);
  return m ? `${m[1]}, pid ${m[2]}` : null;
}

/** The message for a private service whose port another process holds, naming the holder when known. */
export function portTakenMessage(port: number, service: string, fix: string): string {
  const holder = portHolder(port);
  return `port ${port} is taken by another process${holder ? ` (${holder})` : ''}; the private ${service} cannot start. ${fix}, or set STACK_PORT_OFFSET to move the private stack's ports.`;
}

/**
 * Polls `probe` until it returns true, with a short growing interval (a readiness check, not a fixed
 * sleep). Fails with the service's name and log when `timeoutMs` passes or `alive` says it died.
 */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  opts: { timeoutMs: number; log?: string; alive?: () => boolean },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let delay = 50;
  for (;;) {
    if (await probe().catch(() => false)) return;
    const logHint = opts.log ? `; see its log: ${opts.log}\n${tail(opts.log)}` : '';
    if (opts.alive && !opts.alive()) {
      throw new PipelineError('STACK_START_FAILED', `${what} exited during start-up${logHint}`);
    }
    if (Date.now() > deadline) {
      throw new PipelineError('STACK_START_FAILED', `${what} not ready after ${opts.timeoutMs} ms${logHint}`);
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 500);
  }
}

export function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

/** Sends SIGTERM, waits for the process to go, then SIGKILL after `graceMs`; resolves once it is gone. */
export async function stopPid(pid: number, graceMs = 20000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    // Until it is really gone: its ports are bound until then, and a restart would race them.
    const killDeadline = Date.now() + 15000;
    while (isAlive(pid) && Date.now() < killDeadline) await new Promise((r) => setTimeout(r, 50));
  }
}
