/**
 * Waits `ms`; rejects with the signal's reason as soon as `signal` is aborted (and at once when it
 * already is). The one sleep of the code base: the retry helper (src/runtime/retry.ts) and every
 * layer above core use it.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
