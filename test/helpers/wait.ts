import { sleep } from '../../src/core/sleep.js';

/**
 * The tests' one way to wait: `waitFor` polls a probe until a condition holds (never a fixed
 * time), and `sleep` is the product's own (src/core/sleep.ts), for the few places where the
 * passing of time is itself what a test exercises.
 */

export { sleep };

export interface WaitOptions<T> {
  /** How long to poll before failing; 20 s by default. */
  timeoutMs?: number;
  /** The pause between two probes; 100 ms by default. */
  everyMs?: number;
  /** When given, the wait ends at the first value for which it holds (any value, undefined and false included). */
  until?: (value: T) => boolean;
  /** The state to name in the timeout error, beside the probe's last value. */
  describe?: () => unknown;
}

type Probe<T> = () => T | Promise<T>;

/** The longest the state in a timeout error may be, so one failure does not flood the log. */
const MAX_STATE_CHARS = 2000;

/** Polls `probe` until `opts.until(value)` holds, and resolves with that value. */
export function waitFor<T>(
  what: string,
  probe: Probe<T>,
  opts: Omit<WaitOptions<T>, 'until'> & { until: (value: T) => boolean },
): Promise<T>;
/**
 * Polls `probe` until it returns a value that is neither undefined nor false, and resolves with
 * that value. `opts` is the timeout in ms or a `WaitOptions`; past the timeout it throws
 * `timed out after N ms waiting for <what>`, with the last value and `describe()`'s state.
 */
export function waitFor<T>(
  what: string,
  probe: Probe<T | undefined | false>,
  opts?: number | Omit<WaitOptions<T>, 'until'>,
): Promise<T>;
export async function waitFor<T>(what: string, probe: Probe<T>, opts: number | WaitOptions<T> = {}): Promise<T> {
  const o: WaitOptions<T> = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const timeoutMs = o.timeoutMs ?? 20_000;
  const everyMs = o.everyMs ?? 100;
  const done = o.until ?? ((v: T) => v !== undefined && v !== false);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await probe();
    if (done(last)) return last;
    if (Date.now() > deadline) throw new Error(timeoutMessage(what, timeoutMs, last, o.describe));
    await sleep(everyMs);
  }
}

function timeoutMessage(what: string, timeoutMs: number, last: unknown, describe?: () => unknown): string {
  let state = `; last: ${show(last)}`;
  if (describe) state += `; state: ${show(describe())}`;
  if (state.length > MAX_STATE_CHARS) state = `${state.slice(0, MAX_STATE_CHARS)}…`;
  return `timed out after ${timeoutMs} ms waiting for ${what}${state}`;
}

/** JSON where it can (Maps as objects, bigints as strings), else String(v). */
function show(v: unknown): string {
  try {
    return (
      JSON.stringify(v, (_k, x: unknown) =>
        typeof x === 'bigint' ? x.toString() : x instanceof Map ? Object.fromEntries(x) : x,
      ) ?? String(v)
    );
  } catch {
    return String(v);
  }
}
