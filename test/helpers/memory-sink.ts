import { PipelineError } from '../../src/core/errors.js';
import type { EnrichedEvent } from '../../src/core/types.js';
import type { Sink, SinkBatch, SinkFactory, SinkRecord } from '../../src/core/sink-contract.js';

/**
 * A test-only in-memory sink, in the two shapes the contract allows, so the runtime and the
 * contract suite can be proven without a real store:
 * - 'offsets': stores `nextOffset` per topic-partition atomically with the data and APPENDS every
 *   record it accepts (no dedupe by id): only the stored offsets keep a re-delivery from counting
 *   twice, as in the Redis and DuckDB sinks;
 * - 'idempotent': `storedOffsets` returns null and records are kept by event id (the receiver
 *   dedupes), as in the external sink.
 * The data lives in a MemoryStore outside the sink, so a sink can be re-created over the same data
 * (a restart) and the store can be wiped (state loss). A wiped store makes every write throw
 * SINK_STATE_LOST until the runtime calls `storedOffsets` again (which re-initialises it).
 */

export type MemoryVariant = 'offsets' | 'idempotent';

export interface MemoryStore {
  appended: SinkRecord[];
  byId: Map<string, EnrichedEvent>;
  offsets: Map<string, string>;
  /** False once wiped, until `storedOffsets` re-initialises the state. */
  initialised: boolean;
  /** Every `write` call, in order (after hooks; failed calls included with `failed: true`). */
  calls: Array<{ partition: number; records: number; nextOffset: string; failed: boolean }>;
  /** Records skipped because they were below the stored offset (re-deliveries absorbed). */
  skipped: number;
}

export function createMemoryStore(): MemoryStore {
  return { appended: [], byId: new Map(), offsets: new Map(), initialised: true, calls: [], skipped: 0 };
}

/** Loses everything, as Redis does on FLUSHALL. */
export function wipeStore(store: MemoryStore): void {
  store.appended = [];
  store.byId.clear();
  store.offsets.clear();
  store.initialised = false;
}

export function memoryCount(store: MemoryStore, variant: MemoryVariant): number {
  return variant === 'offsets' ? store.appended.length : store.byId.size;
}

export interface MemorySinkOptions {
  name: string;
  variant: MemoryVariant;
  store: MemoryStore;
  /** The sink's `check`: a non-null error sends the record to the DLQ. */
  rejects?: (event: EnrichedEvent) => PipelineError | null;
  /** Runs before each write is applied: throw to fail it, await to slow it. */
  beforeWrite?: (batch: SinkBatch) => Promise<void>;
  startPosition?: 'earliest' | { timestampMs: number };
  batching?: { maxRecords: number; maxWaitMs: number };
}

export function memorySink(opts: MemorySinkOptions): Sink & { closed: boolean; started: boolean } {
  const { store, variant } = opts;
  const sink = {
    name: opts.name,
    closed: false,
    started: false,
    async start() {
      sink.started = true;
    },
    check(record: SinkRecord): PipelineError | null {
      return opts.rejects?.(record.event) ?? null;
    },
    async storedOffsets(topic: string, partitions: number[]) {
      store.initialised = true;
      if (variant === 'idempotent') return null;
      const out = new Map<number, string>();
      for (const p of partitions) {
        const o = store.offsets.get(`${topic}:${p}`);
        if (o !== undefined) out.set(p, o);
      }
      return out;
    },
    startPosition: () => opts.startPosition ?? 'earliest',
    async write(batch: SinkBatch) {
      if (sink.closed) throw new PipelineError('INTERNAL', 'write after close');
      const call = {
        partition: batch.partition,
        records: batch.records.length,
        nextOffset: batch.nextOffset,
        failed: true,
      };
      store.calls.push(call);
      await opts.beforeWrite?.(batch);
      if (!store.initialised)
        throw new PipelineError('SINK_STATE_LOST', 'memory store was wiped', { retriable: false });
      if (variant === 'idempotent') {
        for (const r of batch.records) store.byId.set(r.event.event_id, r.event);
      } else {
        const key = `${batch.topic}:${batch.partition}`;
        const stored = store.offsets.get(key);
        for (const r of batch.records) {
          if (stored !== undefined && BigInt(r.offset) < BigInt(stored)) store.skipped++;
          else store.appended.push(r);
        }
        if (stored === undefined || BigInt(batch.nextOffset) > BigInt(stored)) store.offsets.set(key, batch.nextOffset);
      }
      call.failed = false;
    },
    async health() {
      return { ok: store.initialised };
    },
    async close() {
      sink.closed = true;
    },
  };
  return sink;
}

export function memorySinkFactory(
  opts: MemorySinkOptions,
): SinkFactory & { sinks: Array<ReturnType<typeof memorySink>> } {
  const sinks: Array<ReturnType<typeof memorySink>> = [];
  return {
    name: opts.name,
    sinks,
    ...(opts.batching ? { batching: () => opts.batching! } : {}),
    create: () => {
      const s = memorySink(opts);
      sinks.push(s);
      return s;
    },
  };
}

/** A factory that hands the runner an existing sink instance (the contract suite's sinks). */
export function factoryFor(sink: Sink): SinkFactory {
  return { name: sink.name, create: () => sink };
}
