import { performance } from 'node:perf_hooks';
import { setImmediate as immediate } from 'node:timers/promises';

/**
 * Cooperative time slicing for long synchronous loops on the main thread (a batch transform, a
 * batch decode). Kafka's client completes its calls (a transaction's begin, offsets and commit, a
 * consume round) through callbacks on the main thread; a loop that runs for 50 ms delays every
 * one of them by up to 50 ms, and a transaction needs three in a row. Yielding every few
 * milliseconds lets them through while the loop goes on (measured in docs/processor.md).
 *
 * Contract: `due(i)` is cheap (a counter test, and a clock read every CHECK_EVERY iterations);
 * when it returns true the caller awaits `pause()`, which resolves after the event loop has run
 * the I/O callbacks that were ready, and starts the next slice.
 */

/** Iterations between two clock reads. */
const CHECK_EVERY = 64;
/** Longest slice of work before the loop yields. */
export const SLICE_MS = 4;

export class TimeSlicer {
  private sliceStart: number;

  constructor(
    private readonly sliceMs: number = SLICE_MS,
    /** The clock (ms); tests pass their own. */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.sliceStart = now();
  }

  /** True when the loop at iteration `i` has run its slice and should `await pause()`. */
  due(i: number): boolean {
    return (i & (CHECK_EVERY - 1)) === CHECK_EVERY - 1 && this.now() - this.sliceStart >= this.sliceMs;
  }

  /** Lets ready callbacks run (setImmediate: after the loop's I/O phase), then starts a new slice. */
  async pause(): Promise<void> {
    await immediate();
    this.sliceStart = this.now();
  }
}
