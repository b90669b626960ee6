import { performance } from 'node:perf_hooks';
import type { PipelineError } from '../core/errors.js';
import type { ContentRow, QualityFlag } from '../core/types.js';
import { toEnrichedAvro } from '../core/enriched-avro.js';
import { JSON_FORMAT, type ProcessorFormat } from './format.js';
import { priorAttempts, processorDlqEntry, type SourceRecord } from './dlq.js';
import { durationFlag, enrichValidated, lengthFlag, type EnrichMeta } from './enrich.js';
import { enrichedJson } from './enriched-json.js';
import { reasonOf, rejection } from './reasons.js';
import { DEFAULT_MESSAGE_MAX_BYTES, RECORD_FRAMING_BYTES } from '../kafka/client.js';
import type { OutRecord } from './transaction-writer.js';
import { ValueArena } from '../kafka/value-arena.js';
import { TimeSlicer } from '../runtime/time-slice.js';
import { validateEventRow, type ValidEvent } from './validate.js';

/**
 * One consumed batch (one partition, offset order) → the records to produce: enriched events
 * (keyed by content id) and DLQ entries, in the order of their source offsets. No Kafka I/O
 * besides the content table's barrier: the caller commits the result in a transaction.
 */

/** What the batch needs from the content table. */
export interface ContentLookup {
  /** The content in force at source position `pos` (latest when null). */
  get(id: string, pos?: number | null): ContentRow | undefined;
  has(id: string): boolean;
  catchUp(since: number, timeoutMs?: number, signal?: AbortSignal): Promise<void>;
  waitForIds(ids: Iterable<string>, waitMs: number, signal?: AbortSignal): Promise<Set<string>>;
}

export interface BatchContext {
  table: ContentLookup;
  enrichedTopic: string;
  dlqTopic: string;
  contentWaitMs: number;
  /** KAFKA_MESSAGE_MAX_BYTES: an enriched record larger than this goes to the DLQ (RECORD_TOO_LARGE),
   *  and every DLQ entry is made to fit it (src/core/dlq-size.ts). Default: librdkafka's 1,000,000. */
  maxMessageBytes?: number;
  /** KAFKA_VALUE_FORMAT's readers and writer (format.ts); default JSON in, JSON text out. */
  format?: ProcessorFormat;
  signal?: AbortSignal;
}

/** One consumed message (the fields the batch reads). */
export interface BatchMessage {
  offset: number;
  key?: Buffer | string | null;
  value: Buffer | null;
  /** Read only for a rejected record (a DLQ replay's attempts, dlq.ts). */
  headers?: Array<Record<string, string | Buffer>>;
}

export interface ConsumedBatch {
  topic: string;
  partition: number;
  messages: BatchMessage[];
}

export interface BatchOutcome {
  records: OutRecord[];
  enriched: number;
  dlq: Map<string, number>;
  skipped: Map<string, number>;
  flags: Map<QualityFlag, number>;
  /** source_ts_ms of each enriched record (for the freshness histogram once committed). */
  sourceTs: number[];
  /** Set when the batch waited for unknown content. */
  contentWait?: { ms: number; unknown: number };
}

interface Accepted {
  index: number;
  valid: ValidEvent;
  sourceTsMs: number;
  lsn: number | null;
}

/** An arena chunk for `n` enriched records (~1 KB each), so a batch of a few events does not take 1 MB. */
function arenaBytes(n: number): number {
  return Math.min(1 << 20, Math.max(16 << 10, n * 1536));
}

function bump<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

/**
 * `fetchedAt` (performance.now()) is when the consume round that fetched the batch returned: the
 * content barrier uses end offsets queried no earlier, so content committed before these events is seen.
 */
export async function transformBatch(
  batch: ConsumedBatch,
  fetchedAt: number,
  ctx: BatchContext,
): Promise<BatchOutcome> {
  const now = Date.now();
  const messages = batch.messages;
  const out: BatchOutcome = {
    records: [],
    enriched: 0,
    dlq: new Map(),
    skipped: new Map(),
    flags: new Map(),
    sourceTs: [],
  };
  const slots: Array<OutRecord | null> = new Array<OutRecord | null>(messages.length).fill(null);
  const accepted: Accepted[] = [];
  const maxBytes = ctx.maxMessageBytes ?? DEFAULT_MESSAGE_MAX_BYTES;
  const enrichedLimit = maxBytes - RECORD_FRAMING_BYTES;
  const reject = (i: number, err: PipelineError) => {
    const m = messages[i] as BatchMessage;
    const rec: SourceRecord = {
      topic: batch.topic,
      partition: batch.partition,
      offset: String(m.offset),
      key: typeof m.key === 'string' ? Buffer.from(m.key) : (m.key ?? null),
      value: m.value,
      priorAttempts: priorAttempts(m.headers),
    };
    const key = rec.key === null ? null : rec.key.toString('utf8');
    slots[i] = { topic: ctx.dlqTopic, key, value: JSON.stringify(processorDlqEntry(rec, err, now, maxBytes)) };
    bump(out.dlq, reasonOf(err));
  };

  const format = ctx.format ?? JSON_FORMAT;
  // Avro: the writer schemas the batch names, fetched before the (synchronous, pure) decode.
  if (format.events.prepare) await format.events.prepare(messages.map((m) => m.value));
  // Long batches yield every few ms so the transaction and consume callbacks are not held up.
  const slicer = new TimeSlicer();
  for (let i = 0; i < messages.length; i++) {
    if (slicer.due(i)) await slicer.pause();
    const change = format.events.decode((messages[i] as BatchMessage).value);
    if (change.kind === 'skip') bump(out.skipped, change.reason);
    else if (change.kind === 'reject') reject(i, change.error);
    else {
      const v = validateEventRow(change.row, now);
      if (v.ok) accepted.push({ index: i, valid: v.value, sourceTsMs: change.sourceTsMs, lsn: change.lsn });
      else reject(i, v.error);
    }
  }

  if (accepted.length > 0) {
    // The ordering barrier: content committed before these events is in the table afterwards.
    await ctx.table.catchUp(fetchedAt, undefined, ctx.signal);
    const unknown = new Set<string>();
    for (const a of accepted) if (!ctx.table.has(a.valid.content_id)) unknown.add(a.valid.content_id);
    if (unknown.size > 0) {
      const t0 = performance.now();
      const still = await ctx.table.waitForIds(unknown, ctx.contentWaitMs, ctx.signal);
      out.contentWait = { ms: performance.now() - t0, unknown: still.size };
    }
    ctx.signal?.throwIfAborted();
    const meta = { sourceTsMs: 0, processedTsMs: Date.now(), origin: 'stream' as const };
    // The records wait for their transaction: their bytes wait off the heap (value-arena.ts).
    const arena = new ValueArena(arenaBytes(accepted.length));
    for (let i = 0; i < accepted.length; i++) {
      if (slicer.due(i)) await slicer.pause();
      const a = accepted[i] as Accepted;
      const ev = a.valid;
      const content = ctx.table.get(ev.content_id, a.lsn);
      meta.sourceTsMs = a.sourceTsMs;
      if (content === undefined) {
        const res = enrichValidated(ev, content, meta);
        if (!res.ok) reject(a.index, res.error);
        continue;
      }
      const value = format.enriched ? avroValue(format, ev, content, meta) : enrichedJson(ev, content, meta);
      if (typeof value !== 'string' && !Buffer.isBuffer(value)) {
        reject(a.index, value);
        continue;
      }
      // Larger than a Kafka record may be: it would fail the transaction on every retry.
      if (
        (value.length + ev.content_id.length) * 3 > enrichedLimit &&
        Buffer.byteLength(value) + Buffer.byteLength(ev.content_id) > enrichedLimit
      ) {
        reject(
          a.index,
          rejection(
            'RECORD_TOO_LARGE',
            `enriched event ${ev.event_id} takes ${Buffer.byteLength(value)} bytes, above KAFKA_MESSAGE_MAX_BYTES (${maxBytes}) less framing`,
            { event_id: ev.event_id },
          ),
        );
        continue;
      }
      slots[a.index] = {
        topic: ctx.enrichedTopic,
        key: ev.content_id,
        value: typeof value === 'string' ? arena.put(value) : value,
      };
      out.enriched++;
      out.sourceTs.push(a.sourceTsMs);
      for (const f of ev.flags) bump(out.flags, f);
      const flag = lengthFlag(ev.duration_ms === null ? null : ev.duration_ms / 1000, content.length_seconds);
      if (flag !== null) bump(out.flags, flag);
      const implausible = durationFlag(ev.duration_ms, content.length_seconds);
      if (implausible !== null) bump(out.flags, implausible);
    }
  }
  for (const s of slots) if (s !== null) out.records.push(s);
  return out;
}

/** The enriched record in Avro (KAFKA_VALUE_FORMAT=avro), or why it cannot be (a value the schema does not take). */
function avroValue(
  format: ProcessorFormat,
  ev: ValidEvent,
  content: ContentRow,
  meta: EnrichMeta,
): Buffer | PipelineError {
  const res = enrichValidated(ev, content, meta);
  if (!res.ok) return res.error;
  try {
    return (format.enriched as NonNullable<ProcessorFormat['enriched']>).encode(toEnrichedAvro(res.event));
  } catch (err) {
    return rejection('INVALID_VALUE', (err as Error).message, { event_id: ev.event_id });
  }
}
