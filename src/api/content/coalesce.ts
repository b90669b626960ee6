/**
 * Request coalescing for hot read paths: concurrent callers asking for the same key share one
 * computation, and its result is reused for `ttlMs`. Under load, /top-content then costs one Redis
 * round trip per parameter set per `ttlMs` instead of one per request, however many dashboards
 * poll. A failed computation is not cached. At most `maxKeys` results are kept (expired ones are
 * swept when the map is full; if all are live, the oldest goes).
 */
export class Coalescer<T> {
  private readonly done = new Map<string, { at: number; value: T }>();
  private readonly pending = new Map<string, Promise<T>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxKeys = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string, compute: () => Promise<T>): Promise<T> {
    const hit = this.done.get(key);
    if (hit && this.now() - hit.at < this.ttlMs) return Promise.resolve(hit.value);
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const p = compute().then(
      (value) => {
        this.pending.delete(key);
        this.remember(key, value);
        return value;
      },
      (err: unknown) => {
        this.pending.delete(key);
        throw err;
      },
    );
    this.pending.set(key, p);
    return p;
  }

  private remember(key: string, value: T): void {
    if (this.ttlMs <= 0) return;
    if (this.done.size >= this.maxKeys && !this.done.has(key)) {
      const t = this.now();
      for (const [k, v] of this.done) if (t - v.at >= this.ttlMs) this.done.delete(k);
      if (this.done.size >= this.maxKeys) this.done.delete(this.done.keys().next().value as string);
    }
    this.done.set(key, { at: this.now(), value });
  }
}
