import type { Config } from '../config/load.js';
import type { PipelineError } from './errors.js';
import type { EnrichedEvent } from './types.js';
import type { Logger } from './logger.js';
import type { RetryPolicy } from './retry-policy.js';

/**
 * The contract every sink implements; src/runtime/sink-runner.ts drives it. The runtime owns the
 * Kafka consumer, batching (size and time), retries, the DLQ and offsets: a sink only knows how to
 * check a record and how to write a batch. Adding a sink = one folder under src/sinks/ exporting a
 * SinkFactory (with its `operations`), plus one line in src/sinks/registry.ts: `engage run`, /health,
 * /metrics and the alert rules derive from the registry.
 *
 * Delivery: the runtime calls `write` with the records of ONE partition, in offset order, and
 * `nextOffset` = last offset + 1. A sink that can (Redis, DuckDB) stores `nextOffset` in the same
 * atomic write as the data and returns it from `storedOffsets`; the runtime then resumes from it,
 * so a crash between the write and the Kafka commit neither loses nor double-counts. A sink that
 * cannot (HTTP) is idempotent on the event's identity instead, and `storedOffsets` returns null:
 * (event_id, event_ts), src/core/event-identity.ts — not the id alone, which a sequence reset reuses.
 * The same batch written twice must change nothing.
 */

/** The partition and offset of a record written without Kafka (a backfill's `--direct`). */
export const DIRECT_PARTITION = -1;
export const DIRECT_OFFSET = '-1';

export interface SinkRecord {
  topic: string;
  partition: number;
  /** Kafka offset, as a decimal string (int64); DIRECT_OFFSET (partition DIRECT_PARTITION) when none. */
  offset: string;
  key: string | null;
  event: EnrichedEvent;
}

export interface SinkBatch {
  topic: string;
  partition: number;
  records: SinkRecord[];
  /** Offset to resume from after this batch (last offset + 1). Stored even when `records` is empty. */
  nextOffset: string;
}

/** A batch as read from Kafka, not decoded: what `Sink.writeEncoded` takes. */
export interface EncodedBatch {
  topic: string;
  partition: number;
  /** In offset order; `value` is the message's bytes (an enriched event's JSON, unless it is bad). */
  records: ReadonlyArray<{ offset: string; value: Buffer }>;
  /** As in SinkBatch. */
  nextOffset: string;
}

/**
 * `written`: the batch is stored, and `sourceTsMs` gives each record's source commit time when it
 * is a stream record (null otherwise), in order: the freshness metric's input.
 * `needs-check`: nothing was written; some record may fail to decode or fail `check`.
 */
export type EncodedWriteResult =
  { kind: 'written'; sourceTsMs: ReadonlyArray<number | null> } | { kind: 'needs-check' };

export interface SinkContext {
  config: Config;
  log: Logger;
}

export interface Sink {
  readonly name: string;
  /** Called once before any other method: connect, create schema. Throws a PipelineError. */
  start(): Promise<void>;
  /**
   * Pure check, called before `write`: a non-null result sends the record to the DLQ with that
   * error (confirmed before the batch is written), and the record is not passed to `write`.
   */
  check?(record: SinkRecord): PipelineError | null;
  /**
   * Offsets stored atomically with the sink's data, for the given partitions of `topic`
   * (next offset to read), or null when this sink relies on Kafka's committed offsets.
   */
  storedOffsets(topic: string, partitions: number[]): Promise<Map<number, string> | null>;
  /**
   * Where to start a partition that has no stored offset (a sink that stores offsets): from the
   * beginning (default), or from the first record at or after a timestamp (Redis keeps only a
   * window, so it starts at now - window).
   */
  startPosition?(): 'earliest' | { timestampMs: number };
  /**
   * Writes the batch. Throws a retriable PipelineError for a transient failure (the runtime
   * retries the whole batch with backoff), a non-retriable one when the batch can never be written
   * (the runtime sends its records to the DLQ, then calls `write` again with no records so the
   * offset still advances). Must be idempotent.
   * A sink that finds its own state gone (e.g. Redis wiped) throws code SINK_STATE_LOST: the runtime
   * then asks `storedOffsets`/`startPosition` again for every assigned partition and seeks there,
   * so the sink rebuilds from Kafka without double counting.
   */
  write(batch: SinkBatch): Promise<void>;
  /**
   * Optional fast path, for a sink that can decode and judge a batch more cheaply than the JS
   * thread can (the DuckDB warehouse decodes JSON in DuckDB). The runtime then hands batches read
   * from Kafka here first, undecoded and unchecked. Contract: write the batch exactly as `write`
   * would after decoding and `check` — atomically, idempotently, with the same errors — but only
   * if every record decodes and passes `check`; otherwise write nothing and return `needs-check`,
   * and the runtime decodes, checks, parks and calls `write` as usual. It may refuse a record
   * `check` would pass (it is then merely slower), never the reverse.
   */
  writeEncoded?(batch: EncodedBatch): Promise<EncodedWriteResult>;
  /**
   * With `writeEncoded`: batches of fewer records go the checked way directly, because the fast
   * path's fixed cost per batch does not pay off below this size. Default 1.
   */
  readonly encodedMinRecords?: number;
  /** Sink-specific state for the heartbeat, published under the sink's name (e.g. the
   *  external sink's circuit breaker as `status.external.state`); cheap, synchronous. */
  status?(): object;
  /**
   * Whether the sink can write now, with what explains it: never throws, cheap enough to be asked
   * every heartbeat. The runner polls it and publishes the last answer in the heartbeat as
   * `status.health`; /health warns about a sink stage whose answer is `ok: false`.
   */
  health?(): Promise<SinkHealth>;
  /** Flushes and releases resources. Called once, after the last `write`. */
  close(): Promise<void>;
}

export interface SinkHealth {
  ok: boolean;
  /** `error` (a string) is what /health shows when not ok. */
  detail?: Record<string, unknown>;
}

/**
 * What the supervisor, the API and the alert rules need of a registered sink (src/sinks/registry.ts
 * derives every list of sinks from these; nothing else names a sink).
 */
export interface SinkOperations {
  /** Rank in stage listings (/metrics, the dashboard, `engage run`): lower first, after the processor. */
  readonly order: number;
  /**
   * The freshness promise, in seconds (source commit → visible in the sink): the dashboard colours
   * against it, /metrics reports it, and EngageFreshnessAboveTarget alerts on a p99 above it.
   */
  readonly freshnessTargetSeconds: number;
  /**
   * Whether `engage run` runs the sink when `--sinks` is not given, and /health expects its stage
   * when API_EXPECTED_COMPONENTS is unset: always for the three pipeline sinks, only once configured
   * for an optional one (the file sink: FILE_SINK_DIR).
   */
  runByDefault(config: Config): boolean;
  /**
   * What the sink's process needs under `engage run`: extra environment for it, or null when it
   * cannot run and is left out (the external sink without EXTERNAL_API_URL nor the reference
   * receiver, whose URL `receiverUrl` is when `--with-receiver` is given). Default: nothing extra.
   */
  runEnv?(config: Config, ctx: { receiverUrl?: string }): Record<string, string> | null;
  /** Where the sink writes, for `engage run`'s start-up lines (a file, a dataset); none when absent. */
  destination?(config: Config): string;
}

export interface SinkFactory {
  readonly name: string;
  /** Required of every sink in src/sinks/registry.ts; test-only factories may leave it out. */
  readonly operations?: SinkOperations;
  /**
   * True when the sink is idempotent on the event's identity alone — (event_id, event_ts),
   * src/core/event-identity.ts — (an event written twice, under any batch identity, is stored
   * once): it may then be written without Kafka, as a backfill's
   * `--direct` does (src/backfill/direct-target.ts). Absent when its exactly-once rests on Kafka
   * offsets (Redis).
   */
  readonly dedupesByEventId?: boolean;
  /**
   * The most records one `write` should take when records are all at hand rather than arriving
   * from a stream (a backfill's `--direct` pages); default `batching().maxRecords`. A sink whose
   * batch size only trades latency (the warehouse) returns more; one whose batch size is a limit
   * of the receiving system (the external POST body) leaves it out.
   */
  maxBulkRecords?(config: Config): number;
  /**
   * How the runtime batches for this sink (defaults from the config when absent): a batch goes at
   * `maxRecords`, or when its oldest record has waited `maxWaitMs`, or — `paced` — as soon as the
   * partition's previous write allows (about one write's cost after it ended: src/runtime/commit-pacer.ts),
   * which makes `maxWaitMs` an upper bound only. Pace a sink whose writes are cheap enough to
   * make per-record freshness worth it; leave a sink billed or rate-limited per write unpaced.
   */
  batching?(config: Config): { maxRecords: number; maxWaitMs: number; paced?: boolean };
  /**
   * The backoff between attempts while the sink fails retriably; an outage is waited out whatever
   * `attempts` says (src/runtime/write-splitting.ts). Default DEFAULT_RETRY (src/runtime/retry.ts).
   */
  retryPolicy?(config: Config): RetryPolicy;
  /**
   * Concurrent `write` calls the runtime may make (each of another partition: a partition never
   * has two batches in flight). Default 1: writes are serialised.
   */
  writeConcurrency?(config: Config): number;
  create(ctx: SinkContext): Sink;
}

/** A factory as src/sinks/registry.ts holds it: with the operations every consumer of the registry reads. */
export type RegisteredSinkFactory = SinkFactory & { readonly operations: SinkOperations };
