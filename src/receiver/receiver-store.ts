import { createReadStream, existsSync, mkdirSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { eventKey } from '../core/event-identity.js';

/**
 * What the reference receiver has received, deduplicated twice: by Idempotency-Key (a retried or
 * replayed batch is answered as before and counts nothing) and by the event's key (an event inside
 * a differently composed batch is counted once). The key is the wire's `event_key`, the event's
 * (event_id, event_ts) identity (src/core/event-identity.ts), computed from those two fields when
 * a sender leaves it out: an id reused by a new event after a sequence reset is a new event. `accept` is synchronous, so concurrent requests
 * (a timed-out attempt still in flight beside its retry) cannot both count an event.
 *
 * Optionally every newly accepted event is appended to a JSONL file, one line
 * `{"received_at","idempotency_key","event"}`; reopening the file restores the dedup state, so a
 * restarted receiver still counts each event once. Appends are not fsync'ed.
 */

export interface ReceivedEvent {
  event_id: string;
  event_key?: string;
  [field: string]: unknown;
}

/** The identity the receiver dedupes on: the sender's `event_key`, else (event_id, event_ts). */
export function receivedKey(e: ReceivedEvent): string {
  return typeof e.event_key === 'string' && e.event_key !== ''
    ? e.event_key
    : eventKey(e as { event_id: string; event_ts: string });
}

export interface BatchOutcome {
  duplicate_batch: boolean;
  /** Events counted for the first time. */
  accepted: number;
  /** Events already counted (in an earlier batch, or earlier in this one). */
  duplicates: number;
}

export interface ReceiverStats {
  requests: number;
  batches: number;
  duplicate_batches: number;
  events_received: number;
  events_unique: number;
  events_duplicate: number;
  events_restored: number;
  failures_injected: number;
  connections_dropped: number;
  auth_rejected: number;
  invalid_requests: number;
}

export interface EventView {
  event_id: string;
  event_key: string;
  /** How many times the event arrived (1 = exactly once; duplicates included). */
  deliveries: number;
  first_received_at: string;
  idempotency_key: string;
  /** The event as first received; null once evicted from memory (see maxStoredEvents). */
  event: ReceivedEvent | null;
}

/** The batch an event first arrived in: shared by all its events (one object per batch, not per event). */
interface Arrival {
  at: number;
  key: string;
}

export class ReceiverStore {
  readonly counters: ReceiverStats = {
    requests: 0,
    batches: 0,
    duplicate_batches: 0,
    events_received: 0,
    events_unique: 0,
    events_duplicate: 0,
    events_restored: 0,
    failures_injected: 0,
    connections_dropped: 0,
    auth_rejected: 0,
    invalid_requests: 0,
  };
  private readonly batches = new Map<string, BatchOutcome>();
  /**
   * Every event key ever counted → the index of its first batch in `arrivals`. Kept for the
   * receiver's life (it is what proves "exactly once"), so it stays one small integer per event:
   * with an object per event, a run of millions of events spent most of its CPU in GC.
   */
  private readonly firstArrival = new Map<string, number>();
  /** Event id → the key of the newest event that carried it (lookups by id). */
  private readonly newestKey = new Map<string, string>();
  private readonly arrivals: Arrival[] = [];
  /** Deliveries beyond the first, for the (few) events delivered more than once. */
  private readonly redelivered = new Map<string, number>();
  private readonly bodies = new Map<string, ReceivedEvent>();
  /** The keys whose bodies are kept, oldest at `ringNext` once the ring is full. */
  private readonly bodyRing: Array<string | undefined> = [];
  private ringNext = 0;

  private constructor(
    private readonly file: FileHandle | undefined,
    private readonly maxBodies: number,
  ) {}

  /** Opens the store, restoring from `file` when it exists. Keeps at most `maxBodies` event bodies in memory. */
  static async open(file: string | undefined, maxBodies = 100_000): Promise<ReceiverStore> {
    if (file === undefined) return new ReceiverStore(undefined, maxBodies);
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const existed = existsSync(file);
    const store = new ReceiverStore(await open(file, 'a'), maxBodies);
    if (existed) await store.restore(file);
    return store;
  }

  /** Counts a batch; returns what it added. Synchronous: the dedup decision is atomic. */
  accept(
    key: string,
    events: readonly ReceivedEvent[],
    now = Date.now(),
  ): { outcome: BatchOutcome; fresh: ReceivedEvent[] } {
    const c = this.counters;
    c.events_received += events.length;
    const before = this.batches.get(key);
    if (before !== undefined) {
      c.duplicate_batches++;
      c.events_duplicate += events.length;
      for (const e of events) this.bump(receivedKey(e));
      return { outcome: { ...before, duplicate_batch: true }, fresh: [] };
    }
    const fresh: ReceivedEvent[] = [];
    let arrival = -1;
    for (const e of events) {
      const k = receivedKey(e);
      if (this.bump(k)) continue;
      if (arrival < 0) arrival = this.arrivals.push({ at: now, key }) - 1;
      this.firstArrival.set(k, arrival);
      this.newestKey.set(e.event_id, k);
      this.keepBody(k, e);
      fresh.push(e);
    }
    const outcome: BatchOutcome = {
      duplicate_batch: false,
      accepted: fresh.length,
      duplicates: events.length - fresh.length,
    };
    this.batches.set(key, outcome);
    c.batches++;
    c.events_unique += fresh.length;
    c.events_duplicate += outcome.duplicates;
    return { outcome, fresh };
  }

  /** Appends newly accepted events to the JSONL file (no-op without one). */
  async persist(key: string, fresh: readonly ReceivedEvent[], now = Date.now()): Promise<void> {
    if (this.file === undefined || fresh.length === 0) return;
    const at = new Date(now).toISOString();
    const lines = fresh.map((event) => JSON.stringify({ received_at: at, idempotency_key: key, event })).join('\n');
    await this.file.appendFile(`${lines}\n`);
  }

  /** The event of key `idOrKey`, or the newest event of id `idOrKey`. */
  event(idOrKey: string): EventView | undefined {
    const k = this.firstArrival.has(idOrKey) ? idOrKey : this.newestKey.get(idOrKey);
    const i = k === undefined ? undefined : this.firstArrival.get(k);
    if (k === undefined || i === undefined) return undefined;
    const first = this.arrivals[i] as Arrival;
    const body = this.bodies.get(k) ?? null;
    return {
      event_id: body?.event_id ?? (this.newestKey.has(idOrKey) ? idOrKey : k.slice(0, k.lastIndexOf('@'))),
      event_key: k,
      deliveries: 1 + (this.redelivered.get(k) ?? 0),
      first_received_at: new Date(first.at).toISOString(),
      idempotency_key: first.key,
      event: body,
    };
  }

  /** Every distinct event id received, in first-arrival order (an id reused by a new event once). */
  eventIds(): IterableIterator<string> {
    return this.newestKey.keys();
  }

  /** Every distinct event received, as its key, in first-arrival order. */
  eventKeys(): IterableIterator<string> {
    return this.firstArrival.keys();
  }

  stats(): ReceiverStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    await this.file?.close();
  }

  /** Counts another delivery of a known event; false when the event is new. */
  private bump(k: string): boolean {
    if (!this.firstArrival.has(k)) return false;
    this.redelivered.set(k, (this.redelivered.get(k) ?? 0) + 1);
    return true;
  }

  /** Keeps the body, evicting the oldest past `maxBodies` (FIFO through a ring of ids: taking a
   *  Map's first key after many deletions walks the deleted slots, which made each accept slow). */
  private keepBody(k: string, e: ReceivedEvent): void {
    if (this.maxBodies <= 0) return;
    const evict = this.bodyRing[this.ringNext];
    if (evict !== undefined) this.bodies.delete(evict);
    this.bodyRing[this.ringNext] = k;
    this.ringNext = (this.ringNext + 1) % this.maxBodies;
    this.bodies.set(k, e);
  }

  private async restore(file: string): Promise<void> {
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    const perKey = new Map<string, number>();
    let last: Arrival | undefined;
    for await (const line of lines) {
      if (line.trim() === '') continue;
      let rec: { received_at?: string; idempotency_key?: string; event?: ReceivedEvent };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        continue; // a torn last line from a crash mid-append: the event was not acknowledged
      }
      const id = rec.event?.event_id;
      const key = rec.idempotency_key ?? '';
      if (typeof id !== 'string' || rec.event === undefined) continue;
      const k = receivedKey(rec.event);
      if (this.firstArrival.has(k)) continue;
      const at = Date.parse(rec.received_at ?? '') || Date.now();
      // A batch's lines are consecutive and share key and time: one Arrival for them.
      if (last === undefined || last.key !== key || last.at !== at) {
        last = { at, key };
        this.arrivals.push(last);
      }
      this.firstArrival.set(k, this.arrivals.length - 1);
      this.newestKey.set(id, k);
      this.keepBody(k, rec.event);
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
    }
    for (const [key, accepted] of perKey) this.batches.set(key, { duplicate_batch: false, accepted, duplicates: 0 });
    this.counters.events_unique = this.firstArrival.size;
    this.counters.events_restored = this.firstArrival.size;
  }
}
