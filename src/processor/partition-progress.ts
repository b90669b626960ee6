import { PipelineError } from '../core/errors.js';

/** Partition → offset. */
export type EndOffsets = Map<number, number>;

interface Waiter {
  targets: EndOffsets;
  resolve(): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
  onAbort?: () => void;
  signal?: AbortSignal;
}

/**
 * How far a consumer has read each partition (the next offset it will read, which moves past
 * transaction markers too), and promises that resolve once it has read up to given offsets.
 * The owner calls `advance` as it consumes and `notify` after each round.
 */
export class PartitionProgress {
  private readonly next = new Map<number, number>();
  private waiters: Waiter[] = [];

  advance(partition: number, nextOffset: number): void {
    if (nextOffset > (this.next.get(partition) ?? 0)) this.next.set(partition, nextOffset);
  }

  position(partition: number): number {
    return this.next.get(partition) ?? 0;
  }

  reached(targets: EndOffsets): boolean {
    for (const [partition, end] of targets) if ((this.next.get(partition) ?? 0) < end) return false;
    return true;
  }

  /** Resolves once every partition has reached its target; rejects with TIMEOUT after `timeoutMs`. */
  waitFor(targets: EndOffsets, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.reached(targets)) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        targets,
        resolve,
        reject,
        signal,
        timer: setTimeout(
          () =>
            this.settle(
              waiter,
              new PipelineError('TIMEOUT', `partitions not read up to their end within ${timeoutMs} ms`, {
                retriable: true,
              }),
            ),
          timeoutMs,
        ),
      };
      if (signal) {
        waiter.onAbort = () => this.settle(waiter, signal.reason);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  /** Resolves the waiters whose targets are reached. */
  notify(): void {
    if (this.waiters.length === 0) return;
    for (const w of this.waiters.slice()) if (this.reached(w.targets)) this.settle(w);
  }

  cancelAll(err: unknown): void {
    for (const w of this.waiters.slice()) this.settle(w, err);
  }

  private settle(w: Waiter, err?: unknown): void {
    const i = this.waiters.indexOf(w);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    clearTimeout(w.timer);
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
    if (err === undefined) w.resolve();
    else w.reject(err);
  }
}
