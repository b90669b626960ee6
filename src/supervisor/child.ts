import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { backoffDelay, type RetryPolicy } from '../runtime/retry.js';

/**
 * One supervised component: a child process running `engage <args>`, its output appended to
 * `<logDir>/<name>.log`, restarted with exponential backoff when it exits unexpectedly (the backoff
 * resets once it has run for `stableMs`). `stop()` sends SIGTERM (the component drains and
 * commits) and SIGKILL after a grace period.
 */

export interface ChildSpec {
  name: string;
  /** Arguments to the `engage` CLI, e.g. ['sink', 'redis']. */
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** A finite command (e.g. a backfill) is not restarted after a clean exit. */
  finite?: boolean;
}

export type ChildState = 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped' | 'finished';

export interface ChildStatus {
  name: string;
  state: ChildState;
  pid: number | undefined;
  restarts: number;
  /** When it entered `state` (a status line's age is the time in that state). */
  since: number;
  lastExit: string | undefined;
  /** The last line the process wrote to stderr before an exit with an error code (a CLI failure
   *  prints `engage: <CODE>: <message>` there), capped; undefined after a clean exit or a signal. */
  lastError: string | undefined;
  log: string;
}

/** Called when a component ended unexpectedly, with its status, before it is restarted in `restartInMs`. */
export type EndedHandler = (status: ChildStatus, restartInMs: number) => void;

const STDERR_TAIL = 4096;

const RESTART: RetryPolicy = { attempts: Number.POSITIVE_INFINITY, baseMs: 500, maxMs: 30000, jitter: 'full' };

export class SupervisedChild {
  private proc: ChildProcess | undefined;
  private state: ChildState = 'stopped';
  private restarts = 0;
  private failuresInARow = 0;
  private since = Date.now();
  private lastExit: string | undefined;
  private lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly logFile: string;
  private readonly log: WriteStream;

  constructor(
    private readonly spec: ChildSpec,
    private readonly entry: { node: string; args: string[] },
    logDir: string,
    private readonly stableMs = 30000,
    private readonly onEnded?: EndedHandler,
  ) {
    mkdirSync(logDir, { recursive: true });
    this.logFile = path.join(logDir, `${spec.name}.log`);
    this.log = createWriteStream(this.logFile, { flags: 'a' });
  }

  start(): void {
    this.state = 'starting';
    this.since = Date.now();
    const proc = spawn(this.entry.node, [...this.entry.args, ...this.spec.args], {
      // SUPERVISOR_PID: the component stops by itself if this process dies without stopping it.
      env: { ...process.env, ...this.spec.env, SUPERVISOR_PID: String(process.pid) },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a terminal's Ctrl-C reaches only the supervisor, which then stops
      // each component once (SIGTERM), so every one drains instead of seeing two signals.
      detached: true,
    });
    this.proc = proc;
    proc.stdout?.pipe(this.log, { end: false });
    proc.stderr?.pipe(this.log, { end: false });
    let stderrTail = '';
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });
    // The last of its stderr may arrive after 'exit': the error line is taken once stderr closed.
    const stderrDone = new Promise<string>((resolve) => {
      if (!proc.stderr) resolve('');
      else proc.stderr.once('close', () => resolve(stderrTail));
    });
    proc.once('spawn', () => {
      if (this.state === 'starting') this.state = 'running';
    });
    proc.once('exit', (code, signal) => this.onExit(code, signal, stderrDone));
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null, stderr: Promise<string>): void {
    this.proc = undefined;
    this.lastExit = signal ? `signal ${signal}` : `exit ${code}`;
    this.lastError = undefined;
    if (this.state === 'stopping') {
      this.state = 'stopped';
      this.since = Date.now();
      return;
    }
    if (this.spec.finite && code === 0) {
      this.state = 'finished';
      this.since = Date.now();
      return;
    }
    const ranFor = Date.now() - this.since;
    this.failuresInARow = ranFor >= this.stableMs ? 1 : this.failuresInARow + 1;
    const delay = backoffDelay(RESTART, this.failuresInARow);
    this.state = 'backoff';
    this.since = Date.now();
    this.log.write(`\n[supervisor] ${this.spec.name} ended (${this.lastExit}); restarting in ${delay} ms\n`);
    const atExit = this.status();
    void stderr.then((tail) => {
      const error = code ? lastLine(tail) : undefined;
      if (this.lastExit === atExit.lastExit && this.restarts === atExit.restarts) this.lastError = error;
      this.onEnded?.({ ...atExit, lastError: error }, delay);
    });
    this.timer = setTimeout(() => {
      this.restarts++;
      this.start();
    }, delay);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process is gone. */
  async stop(graceMs = 20000): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    const proc = this.proc;
    this.state = 'stopping';
    this.since = Date.now();
    if (!proc || proc.exitCode !== null) {
      this.state = 'stopped';
      return;
    }
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(killer);
  }

  /** For fault-injection tests and `engage run`'s own checks. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.proc?.kill(signal);
  }

  status(): ChildStatus {
    return { name: this.spec.name, state: this.state, pid: this.proc?.pid, restarts: this.restarts, since: this.since, lastExit: this.lastExit, lastError: this.lastError, log: this.logFile };
  }
}

/** The last non-empty line of `text`, capped at 300 characters; undefined when there is none. */
function lastLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines[lines.length - 1];
  return last === undefined || last.length <= 300 ? last : `${last.slice(0, 299)}…`;
}
