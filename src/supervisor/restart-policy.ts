import { EXIT_CONFIG, EXIT_USAGE } from '../core/errors.js';
import { backoffDelay, type RetryPolicy } from '../runtime/retry.js';

/**
 * When `engage run` restarts a component that ended unexpectedly, and when it stops trying. Pure.
 *
 * - An exit with EXIT_USAGE (2) or EXIT_CONFIG (78) is fatal (src/core/errors.ts exitCodeFor): the
 *   same command in the same environment would fail the same way, so it is not restarted; the
 *   reason is the error the CLI printed.
 * - Any other end is restarted after an exponential backoff (the project's one retry helper's)
 *   whose attempt is the larger of the crashes in a row (reset once the component has run for the
 *   stable time) and the crashes within CRASH_WINDOW_MS: a component that crashes each time after
 *   running a while backs off too.
 * - CRASH_LOOP_CRASHES crashes or more within CRASH_WINDOW_MS is a crash loop: reported (terminal,
 *   the component's log, the supervisor's heartbeat and so /health) while the restarts go on.
 */

export const CRASH_WINDOW_MS = 10 * 60_000;
export const CRASH_LOOP_CRASHES = 5;

export const RESTART_BACKOFF: RetryPolicy = {
  attempts: Number.POSITIVE_INFINITY,
  baseMs: 500,
  maxMs: 30000,
  jitter: 'full',
};

/** Whether an exit ends the component's supervision: exit codes the CLI gives to fatal errors. */
export function isFatalExit(code: number | null): boolean {
  return code === EXIT_USAGE || code === EXIT_CONFIG;
}

/** The crashes of one component: their times within the window, and the ones in a row. */
export class CrashRecord {
  private times: number[] = [];
  private inARow = 0;

  constructor(
    readonly windowMs = CRASH_WINDOW_MS,
    private readonly loopCrashes = CRASH_LOOP_CRASHES,
    private readonly backoff: RetryPolicy = RESTART_BACKOFF,
  ) {}

  /** Records a crash after `ranForMs` of running; returns the delay before the restart. */
  crashed(nowMs: number, ranForMs: number, stableMs: number, random: () => number = Math.random): number {
    this.inARow = ranForMs >= stableMs ? 1 : this.inARow + 1;
    this.times = [...this.times.filter((t) => t > nowMs - this.windowMs), nowMs];
    return backoffDelay(this.backoff, Math.max(this.inARow, this.times.length), random);
  }

  /** Crashes within the window ending at `nowMs`. */
  recent(nowMs: number): number {
    return this.times.filter((t) => t > nowMs - this.windowMs).length;
  }

  isLoop(nowMs: number): boolean {
    return this.recent(nowMs) >= this.loopCrashes;
  }
}

/**
 * The error a failed CLI printed, from the tail of its stderr: from its last `engage: <CODE>: `
 * line up to the next blank line (a configuration error names each bad variable on a line of its
 * own), joined on one line; else the last non-empty line. Capped at 300 characters; undefined when
 * there is nothing.
 */
export function errorSummary(stderrTail: string): string | undefined {
  const lines = stderrTail.split('\n').map((l) => l.trim());
  let start = -1;
  for (let i = lines.length - 1; i >= 0 && start < 0; i--) if (/^engage: [A-Z_]+: /.test(lines[i] ?? '')) start = i;
  let text: string | undefined;
  if (start >= 0) {
    const end = lines.indexOf('', start);
    text = lines.slice(start, end < 0 ? undefined : end).join(' ');
  } else {
    text = lines.filter(Boolean).pop();
  }
  return text === undefined || text.length <= 300 ? text : `${text.slice(0, 299)}…`;
}
