import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { CrashRecord, errorSummary, isFatalExit } from './restart-policy.js';

/**
 * One supervised component: a child process running `engage <args>`, its output appended to
 * `<logDir>/<name>.log`, restarted with exponential backoff when it exits unexpectedly, unless its
 * exit says a restart cannot help (restart-policy.ts: then it stays `failed`, with the reason).
 * `stop()` sends SIGTERM (the component drains and commits) and SIGKILL after a grace period. The
 * component never outlives this process: it stops by itself once the IPC channel opened here
 * closes (src/cli/launcher-watch.ts).
 */

export interface ChildSpec {
  name: string;
  /** Arguments to the `engage` CLI, e.g. ['sink', 'redis']. */
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** A finite command (e.g. a backfill) is not restarted after a clean exit. */
  finite?: boolean;
}

/** `failed`: ended with a fatal error, not restarted (`notRestarted` says why). */
export type ChildState = 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped' | 'finished' | 'failed';

export interface ChildStatus {
  name: string;
  state: ChildState;
  pid: number | undefined;
  restarts: number;
  /** When it entered `state` (a status line's age is the time in that state). */
  since: number;
  lastExit: string | undefined;
  /** The error the process wrote to stderr before an exit with an error code (a CLI failure
   *  prints `engage: <CODE>: <message>` there: restart-policy.ts errorSummary), capped; undefined
   *  after a clean exit or a signal. */
  lastError: string | undefined;
  /** Unexpected ends within the crash window (restart-policy.ts). */
  crashes: number;
  /** As many crashes within the window as make a crash loop. */
  crashLoop: boolean;
  /** Why a `failed` component is not restarted (its fatal error); undefined otherwise. */
  notRestarted: string | undefined;
  log: string;
}

/**
 * Called when a component ended unexpectedly, with its status, before it is restarted in
 * `restartInMs`, or with null when it is not restarted (fatal: `status.notRestarted` says why).
 */
export type EndedHandler = (status: ChildStatus, restartInMs: number | null) => void;

const STDERR_TAIL = 4096;

export class SupervisedChild {
  private proc: ChildProcess | undefined;
  private state: ChildState = 'stopped';
  private restarts = 0;
  private notRestarted: string | undefined;
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
    private readonly crashes = new CrashRecord(),
  ) {
    mkdirSync(logDir, { recursive: true });
    this.logFile = path.join(logDir, `${spec.name}.log`);
    this.log = createWriteStream(this.logFile, { flags: 'a' });
  }

  start(): void {
    this.state = 'starting';
    this.since = Date.now();
    this.notRestarted = undefined;
    const proc = spawn(this.entry.node, [...this.entry.args, ...this.spec.args], {
      // SUPERVISOR_PID: the components under src/runtime/lifecycle.ts also poll this process's pid.
      // HEALTH_PORT is one component's (its orchestrator probes it): here every child would bind the same port.
      env: { ...process.env, ...this.spec.env, SUPERVISOR_PID: String(process.pid), HEALTH_PORT: undefined },
      // 'ipc': the channel whose closing tells the component this process is gone (never written).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
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
    const now = Date.now();
    const ranFor = now - this.since;
    this.since = now;
    if (isFatalExit(code)) {
      this.state = 'failed';
      const atExit = this.status();
      void stderr.then((tail) => {
        const error = errorSummary(tail) ?? `exit ${code}`;
        this.lastError = error;
        this.notRestarted = error;
        this.log.write(
          `\n[supervisor] ${this.spec.name} ended (${this.lastExit}): not restarting it, a restart cannot fix this: ${error}\n`,
        );
        this.onEnded?.({ ...atExit, lastError: error, notRestarted: error }, null);
      });
      return;
    }
    const delay = this.crashes.crashed(now, ranFor, this.stableMs);
    this.state = 'backoff';
    const loop = this.crashes.isLoop(now)
      ? ` (crash loop: ${this.crashes.recent(now)} crashes in ${this.crashes.windowMs / 60_000} min)`
      : '';
    this.log.write(`\n[supervisor] ${this.spec.name} ended (${this.lastExit})${loop}; restarting in ${delay} ms\n`);
    const atExit = this.status();
    void stderr.then((tail) => {
      const error = code ? errorSummary(tail) : undefined;
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
    if (this.state === 'failed') return;
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
    const now = Date.now();
    return {
      name: this.spec.name,
      state: this.state,
      pid: this.proc?.pid,
      restarts: this.restarts,
      since: this.since,
      lastExit: this.lastExit,
      lastError: this.lastError,
      crashes: this.crashes.recent(now),
      crashLoop: this.crashes.isLoop(now),
      notRestarted: this.notRestarted,
      log: this.logFile,
    };
  }
}
