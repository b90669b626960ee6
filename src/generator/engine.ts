import { ContentPopularity, UserPool, type CatalogueItem } from './popularity.js';
import { Rng } from './random.js';
import { fitBefore, generateSession, type GeneratedEvent } from './session.js';
import type { Slice } from './timeline.js';

/**
 * The pure event generator: catalogue + seed (+ options) → engagement events. No I/O and no clock:
 * callers pass "now", so the same seed, catalogue and now give exactly the same events. The modes
 * (src/generator/modes.ts) add the database and the wall clock.
 */

export interface EngineOptions {
  catalogue: readonly CatalogueItem[];
  seed: number | string;
  /** Size of the user pool (default 5000). */
  users?: number;
  /** Zipf exponent of content popularity (default 1.1). */
  popularityExponent?: number;
}

export class EventEngine {
  readonly popularity: ContentPopularity;
  readonly users: UserPool;
  private readonly rng: Rng;
  private readonly seed: number | string;
  sessions = 0;

  constructor(opts: EngineOptions) {
    this.seed = opts.seed;
    this.popularity = new ContentPopularity(opts.catalogue, opts.seed, opts.popularityExponent ?? 1.1);
    this.users = new UserPool(opts.users ?? 5000, opts.seed);
    this.rng = Rng.derive(opts.seed, 'sessions');
  }

  /** One session starting at `startMs`, squeezed to end by `limitMs`, drawn from `rng`. */
  session(startMs: number, limitMs: number, rng: Rng = this.rng): GeneratedEvent[] {
    const user = this.users.pick(rng);
    const item = this.popularity.pick(rng, startMs);
    this.sessions++;
    return fitBefore(generateSession(rng, item, user, startMs), limitMs);
  }

  /**
   * Exactly `slice.quota` events from sessions starting inside the slice (the last session is cut
   * short — as if abandoned — when the quota runs out), sorted by event_ts (stable: a session's
   * events keep their order on equal timestamps). No event is later than `limitMs`. Each slice
   * has its own random stream (derived from the seed and `index`), so slices can be generated in
   * any order — or by concurrent writers — and still give the same rows.
   */
  fillSlice(slice: Slice, index: number, limitMs: number): GeneratedEvent[] {
    const rng = Rng.derive(this.seed, `slice:${index}`);
    const out: GeneratedEvent[] = [];
    const width = Math.max(1, slice.endMs - slice.startMs);
    while (out.length < slice.quota) {
      const start = slice.startMs + rng.int(width);
      const events = this.session(start, limitMs, rng);
      const take = Math.min(events.length, slice.quota - out.length);
      for (let i = 0; i < take; i++) out.push(events[i] as GeneratedEvent);
    }
    return out.sort((a, b) => a.event_ts - b.event_ts);
  }

  /** The events of the given slices (by plan index), one sorted chunk per slice, generated lazily. */
  *chunks(slices: ReadonlyArray<{ slice: Slice; index: number }>, limitMs: number): Generator<GeneratedEvent[]> {
    for (const { slice, index } of slices) yield this.fillSlice(slice, index, limitMs);
  }

  /** A live interleaving of concurrent sessions, for continuous mode. */
  live(concurrency: number): LiveSessions {
    return new LiveSessions(this, this.rng, concurrency);
  }
}

/**
 * Continuous mode's source: `concurrency` sessions in flight; each call to `next` advances one of
 * them by one event, stamped with the time given, so every session's events stay in order
 * (play … finish) while sessions interleave. Durations keep the session model's values.
 */
export class LiveSessions {
  private readonly active: Array<{ events: GeneratedEvent[]; next: number }> = [];

  constructor(
    private readonly engine: EventEngine,
    private readonly rng: Rng,
    private readonly concurrency: number,
  ) {}

  next(nowMs: number): GeneratedEvent {
    while (this.active.length < this.concurrency) {
      this.active.push({ events: this.engine.session(nowMs, Number.POSITIVE_INFINITY), next: 0 });
    }
    const i = this.rng.int(this.active.length);
    const s = this.active[i] as { events: GeneratedEvent[]; next: number };
    const event = s.events[s.next++] as GeneratedEvent;
    event.event_ts = nowMs;
    if (s.next >= s.events.length) {
      // Replace the finished session with a fresh one (swap-remove keeps this O(1)).
      this.active[i] = this.active[this.active.length - 1] as { events: GeneratedEvent[]; next: number };
      this.active.pop();
    }
    return event;
  }
}
