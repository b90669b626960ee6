import { performance } from 'node:perf_hooks';
import { RdKafka } from '@confluentinc/kafka-javascript';
import { PipelineError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ContentRow } from '../core/types.js';
import { sleep } from '../runtime/retry.js';
import { JSON_CONTENT, type ContentInput } from './format.js';
import { applyContentChange, contentAt, isKnown, type ContentVersions } from './content-versions.js';
import type { ProcessorMetrics } from './metrics.js';
import { PartitionProgress, type EndOffsets } from './partition-progress.js';
import { connectionProps, consumerFetchProps, type KafkaConnection } from '../kafka/client.js';

/**
 * The content table: every row of the compacted content topic, materialised in memory (with its
 * last few versions, so an event is joined with the version in force at its source position:
 * content-versions.ts) by one consumer per processor instance. That consumer is NOT in the processor's group: it assign()s
 * every partition from the beginning (librdkafka's plain consumer; no group join, no commits),
 * reads with read_committed, and keeps running, so later changes apply to later events.
 *
 * `catchUp(since)` is the ordering barrier: it asks the broker for the content topic's last
 * stable offsets (a query started at or after `since`, e.g. when the events' consume round ended)
 * and resolves once the table has consumed up to them. The CDC commits a content row in the same
 * or an earlier Kafka transaction than any event of the same or a later PostgreSQL transaction, so
 * after a barrier begun once a batch of events was in hand, every content change committed before
 * those events is in the table.
 */

export interface ContentTableOptions {
  /** Where and how to reach Kafka (a Config is one). */
  connection: KafkaConnection;
  clientId: string;
  topic: string;
  log: Logger;
  metrics: ProcessorMetrics;
  /** How long the initial restore may take before start fails (default 10 min). */
  restoreTimeoutMs?: number;
  /** How the topic's records are read (format.ts; default JSON). */
  input?: ContentInput;
}

/** RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION. */
const ERR_UNKNOWN_PARTITION = -190;
type RawConsumer = InstanceType<typeof RdKafka.KafkaConsumer>;

const CONSUME_MAX = 2000;
/** librdkafka's logical offset for the start of a partition. */
const OFFSET_BEGINNING = -2;
/** librdkafka's logical offset for the end of a partition (as a ListOffsets "timestamp": latest). */
const OFFSET_END = -1;
const BARRIER_TIMEOUT_MS = 30000;

export class ContentTable {
  private readonly rows: ContentVersions = new Map();
  private readonly progress = new PartitionProgress();
  private lastEnds: { startedAt: number; ends: Promise<EndOffsets> } | undefined;
  private loop: Promise<void> | undefined;
  private running = true;
  private invalid = 0;
  /** Since when (performance.now()) every end-offsets query has failed with "Unknown partition"; undefined: the last one answered. */
  private unknownPartitionSince: number | undefined;

  private constructor(
    private readonly opts: ContentTableOptions,
    private readonly consumer: RawConsumer,
    private readonly partitions: number[],
  ) {}

  /** Connects, assigns every partition from the beginning and returns once fully restored. */
  static async open(opts: ContentTableOptions): Promise<ContentTable> {
    const consumer = new RdKafka.KafkaConsumer({
      ...connectionProps(opts.connection),
      ...consumerFetchProps(opts.connection),
      'client.id': `${opts.clientId}-content-table`,
      // Required by librdkafka; never joined (assign() only) and never committed.
      'group.id': `${opts.clientId}-content-table`,
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
      'isolation.level': 'read_committed',
      'enable.partition.eof': true,
      'auto.offset.reset': 'earliest',
      'fetch.wait.max.ms': 20,
      // Content rows are few and small: a modest prefetch buffer is plenty.
      'queued.max.messages.kbytes': 8192,
    });
    consumer.on('event.error', (err) => opts.log.warn({ err: err.message }, 'content table consumer error'));
    await new Promise<void>((resolve, reject) =>
      consumer.connect({ timeout: 10000 }, (err) => (err ? reject(err) : resolve())),
    );
    const started = performance.now();
    try {
      const meta = await new Promise<RdKafka.Metadata>((resolve, reject) =>
        consumer.getMetadata({ topic: opts.topic, timeout: 10000 }, (err, m) => (err ? reject(err) : resolve(m))),
      );
      const partitions = (meta.topics.find((t) => t.name === opts.topic)?.partitions ?? [])
        .map((p) => p.id)
        .sort((a, b) => a - b);
      if (partitions.length === 0)
        throw new PipelineError(
          'SERVICE_MISCONFIGURED',
          `content topic ${opts.topic} has no partitions (does it exist?)`,
        );
      const table = new ContentTable(opts, consumer, partitions);
      consumer.setDefaultConsumeTimeout(100);
      // Untyped in the library's .d.ts: return as soon as some messages are ready, not after the full timeout.
      (
        consumer as unknown as { setDefaultIsTimeoutOnlyForFirstMessage(v: boolean): void }
      ).setDefaultIsTimeoutOnlyForFirstMessage(true);
      consumer.on('partition.eof', (eof) => table.progress.advance(eof.partition, eof.offset));
      consumer.assign(partitions.map((partition) => ({ topic: opts.topic, partition, offset: OFFSET_BEGINNING })));
      table.loop = table.consumeLoop();
      await table.catchUp(started, opts.restoreTimeoutMs ?? 600000);
      opts.log.info(
        { rows: table.rows.size, partitions: partitions.length, ms: Math.round(performance.now() - started) },
        'content table restored',
      );
      return table;
    } catch (err) {
      await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
      throw err;
    }
  }

  /** The content in force at source position `pos` (see content-versions.ts); latest when null. */
  get(id: string, pos?: number | null): ContentRow | undefined {
    return contentAt(this.rows, id, pos);
  }

  /** True when the id has a live (not deleted) latest version. */
  has(id: string): boolean {
    return isKnown(this.rows, id);
  }

  get size(): number {
    return this.rows.size;
  }

  /** Resolves once the table holds every content change committed before a query begun at or
   *  after `since` (performance.now() time). Throws a retriable TIMEOUT after `timeoutMs`. */
  async catchUp(since: number, timeoutMs = BARRIER_TIMEOUT_MS, signal?: AbortSignal): Promise<void> {
    const ends = await this.endOffsets(since);
    if (this.progress.reached(ends)) return;
    await this.progress.waitFor(ends, timeoutMs, signal).catch((err: unknown) => {
      if (err instanceof PipelineError && err.code === 'TIMEOUT') {
        throw new PipelineError(
          'TIMEOUT',
          `content table did not reach the content topic's end within ${timeoutMs} ms`,
          { retriable: true },
        );
      }
      throw err;
    });
  }

  /**
   * Waits until every id in `ids` is in the table or `waitMs` has passed, re-running the barrier in
   * between (content committed later than the events, e.g. by a snapshot, still arrives). Returns
   * the ids still unknown.
   */
  async waitForIds(ids: Iterable<string>, waitMs: number, signal?: AbortSignal): Promise<Set<string>> {
    const missing = new Set([...ids].filter((id) => !this.has(id)));
    const deadline = performance.now() + waitMs;
    for (;;) {
      if (missing.size === 0 || signal?.aborted) return missing;
      const now = performance.now();
      if (now >= deadline) return missing;
      await this.catchUp(now, Math.max(1000, deadline - now), signal);
      for (const id of missing) if (this.has(id)) missing.delete(id);
      if (missing.size > 0 && performance.now() < deadline)
        await sleep(Math.min(100, deadline - performance.now()), signal).catch(() => undefined);
    }
  }

  /**
   * How long every query of the content topic's end offsets has failed with librdkafka's
   * "Unknown partition" (0: the last one answered). Seen after a broker restart on a loaded
   * machine (fault matrix, 2026-12-07 21:41 UTC): this client's metadata stayed without the
   * topic's partitions for 6 minutes despite the refresh asked for on each failure, holding every
   * batch back; a new client (the processor restarted) does not have it.
   */
  metadataStuckMs(now = performance.now()): number {
    return this.unknownPartitionSince === undefined ? 0 : now - this.unknownPartitionSince;
  }

  status(): Record<string, unknown> {
    return { rows: this.rows.size, partitions: this.partitions.length, invalid: this.invalid };
  }

  async close(): Promise<void> {
    this.running = false;
    this.progress.cancelAll(new PipelineError('INTERNAL', 'content table closed'));
    await this.loop;
    await new Promise<void>((resolve) => this.consumer.disconnect(() => resolve()));
  }

  /**
   * Latest stable offsets of every partition (ListOffsets for "latest" under read_committed, one
   * request for all partitions: offsetsForTimes with librdkafka's OFFSET_END); shares a query
   * already begun at or after `since`, so the batches of one consume round share one round trip.
   */
  private endOffsets(since: number): Promise<EndOffsets> {
    if (this.lastEnds && this.lastEnds.startedAt >= since) return this.lastEnds.ends;
    const startedAt = performance.now();
    const query = this.partitions.map((partition) => ({ topic: this.opts.topic, partition, offset: OFFSET_END }));
    const ends = new Promise<EndOffsets>((resolve, reject) =>
      this.consumer.offsetsForTimes(query, 10000, (err, offsets) => {
        if (err) {
          // After a broker restart librdkafka's metadata can stay without the topic's partitions,
          // failing every query ("Unknown partition") for minutes: ask for fresh metadata.
          if (err.code === ERR_UNKNOWN_PARTITION) {
            this.unknownPartitionSince ??= startedAt;
            this.consumer.getMetadata({ topic: this.opts.topic, timeout: 5000 }, () => undefined);
          }
          reject(
            new PipelineError('SERVICE_UNREACHABLE', `content topic offsets: ${err.message}`, { retriable: true }),
          );
        } else {
          this.unknownPartitionSince = undefined;
          resolve(new Map(offsets.map((o) => [o.partition, o.offset])));
        }
      }),
    );
    this.lastEnds = { startedAt, ends };
    ends.catch(() => {
      if (this.lastEnds?.ends === ends) this.lastEnds = undefined;
    });
    return ends;
  }

  private async consumeLoop(): Promise<void> {
    while (this.running) {
      let messages: RdKafka.Message[];
      try {
        messages = await new Promise<RdKafka.Message[]>((resolve, reject) =>
          this.consumer.consume(CONSUME_MAX, (err, m) => (err ? reject(err) : resolve(m))),
        );
      } catch (err) {
        this.opts.log.warn({ err: errorMessage(err) }, 'content table: consume failed; retrying');
        await sleep(500);
        continue;
      }
      if (messages.length > 0 && !(await this.prepare(messages))) break;
      for (const m of messages) this.apply(m);
      for (const p of this.consumer.position())
        if (typeof p.offset === 'number') this.progress.advance(p.partition, p.offset);
      this.opts.metrics.contentTableSize.set(this.rows.size);
      this.progress.notify();
    }
  }

  /**
   * Fetches the writer schemas a round of Avro records names, retried while the registry does not
   * answer (no record may be applied out of order, nor skipped); false when the table closed meanwhile.
   */
  private async prepare(messages: RdKafka.Message[]): Promise<boolean> {
    const prepare = this.opts.input?.prepare;
    if (!prepare) return true;
    for (let attempt = 1; this.running; attempt++) {
      try {
        await prepare(
          messages.map((m) => keyOf(m)),
          messages.map((m) => m.value),
        );
        return true;
      } catch (err) {
        this.opts.log.warn({ err: errorMessage(err), attempt }, 'content table: schemas not available; retrying');
        await sleep(Math.min(5000, 200 * attempt));
      }
    }
    return false;
  }

  private apply(m: RdKafka.Message): void {
    this.progress.advance(m.partition, m.offset + 1);
    const change = (this.opts.input ?? JSON_CONTENT).decode(keyOf(m), m.value);
    if (change.kind !== 'invalid') {
      applyContentChange(this.rows, change);
      return;
    }
    this.invalid++;
    this.opts.metrics.contentInvalid.inc();
    this.opts.log.warn(
      { partition: m.partition, offset: m.offset, reason: change.message },
      'content table: malformed content record ignored',
    );
  }
}

function keyOf(m: RdKafka.Message): Buffer | null {
  return typeof m.key === 'string' ? Buffer.from(m.key) : (m.key ?? null);
}
