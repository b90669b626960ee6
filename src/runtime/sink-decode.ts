import { PipelineError } from '../core/errors.js';
import type { DlqEntry, EnrichedEvent } from '../core/types.js';
import type { SinkRecord } from '../core/sink-contract.js';

/**
 * Turning a consumed Kafka message into what the sink runner delivers. Pure functions: the runner
 * calls a MessageDecoder once per message, in offset order, and acts on the verdict:
 * - `record`: delivered to the sink (after its `check`);
 * - `reject`: sent to the DLQ with the error (confirmed before the batch is written);
 * - `skip`: not this runner's business (a DLQ entry of another stage during a replay); it still
 *   counts as settled, so the offset moves past it.
 * `origin` is what a DLQ entry records about the record: where the ORIGINAL bytes came from.
 */

export interface InboundMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
}

export interface DlqOrigin {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  /** The original value (encoded to base64 only when the record is parked). */
  value: Buffer | null;
  /** Attempts already recorded for this record (0 for a first delivery). */
  priorAttempts: number;
  /** True when the record is replayed from the DLQ (its entry's attempts then count rounds). */
  replay: boolean;
}

export type Decoded =
  | { kind: 'record'; record: SinkRecord; origin: DlqOrigin }
  | { kind: 'reject'; error: PipelineError; origin: DlqOrigin }
  | { kind: 'skip' };

/**
 * `prepare`, when present, is awaited once per batch before the batch's messages are decoded (an
 * Avro decoder fetches the writer schemas they name: avro-decode.ts); it throws retriably when it
 * cannot, and the batch waits.
 */
export type MessageDecoder = ((message: InboundMessage) => Decoded) & {
  prepare?(messages: readonly InboundMessage[]): Promise<void>;
};

export function originOf(m: InboundMessage): DlqOrigin {
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    key: m.key === null ? null : m.key.toString('utf8'),
    value: m.value,
    priorAttempts: 0,
    replay: false,
  };
}

/**
 * Parses bytes as an EnrichedEvent. Only the shape the runtime itself relies on is checked (a JSON
 * object with a string `event_id`); the sink's own `check` judges the rest.
 */
export function parseEnrichedEvent(bytes: Buffer | null): EnrichedEvent | PipelineError {
  if (bytes === null) return new PipelineError('DECODE_FAILED', 'message has no value (tombstone)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    return new PipelineError('DECODE_FAILED', `value is not JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return new PipelineError('DECODE_FAILED', 'value is not a JSON object');
  }
  const eventId = (parsed as { event_id?: unknown }).event_id;
  if (typeof eventId !== 'string' || eventId.length === 0) {
    return new PipelineError('DECODE_FAILED', 'value has no string event_id: not an enriched event');
  }
  return parsed as EnrichedEvent;
}

/** The normal decoder: a message of the enriched topic is one enriched event. */
export const decodeEnrichedMessage: MessageDecoder = (m) => {
  const origin = originOf(m);
  const event = parseEnrichedEvent(m.value);
  if (event instanceof PipelineError) return { kind: 'reject', error: event, origin };
  return {
    kind: 'record',
    record: { topic: m.topic, partition: m.partition, offset: m.offset, key: origin.key, event },
    origin,
  };
};

/** Parses a DLQ message value as a DlqEntry, or returns null when it is not one. */
export function parseDlqEntry(bytes: Buffer | null): DlqEntry | null {
  if (bytes === null) return null;
  try {
    const v = JSON.parse(bytes.toString('utf8')) as Partial<DlqEntry> | null;
    if (v === null || typeof v !== 'object' || typeof v.stage !== 'string' || typeof v.topic !== 'string') return null;
    if (typeof v.partition !== 'number' || typeof v.offset !== 'string') return null;
    return v as DlqEntry;
  } catch {
    return null;
  }
}

/**
 * The replay decoder for `engage dlq replay --stage <stage>`: a DLQ message whose entry belongs to
 * `stage` becomes a record whose position is the DLQ message's own (so the sink's stored offsets
 * for the DLQ topic make the replay idempotent), and whose DLQ origin is the entry's original
 * position and bytes (so a second failure parks the same record again, with attempts + 1).
 */
export function dlqReplayDecoder(
  stage: string,
  parse: (bytes: Buffer | null) => EnrichedEvent | PipelineError = parseEnrichedEvent,
): MessageDecoder {
  return (m) => {
    const entry = parseDlqEntry(m.value);
    if (entry === null || entry.stage !== stage) return { kind: 'skip' };
    const value = entry.value_base64 === null ? null : Buffer.from(entry.value_base64, 'base64');
    const origin: DlqOrigin = {
      topic: entry.topic,
      partition: entry.partition,
      offset: entry.offset,
      key: entry.key,
      value,
      priorAttempts: typeof entry.attempts === 'number' ? entry.attempts : 0,
      replay: true,
    };
    const event = parse(value);
    if (event instanceof PipelineError) return { kind: 'reject', error: event, origin };
    return {
      kind: 'record',
      record: { topic: m.topic, partition: m.partition, offset: m.offset, key: entry.key, event },
      origin,
    };
  };
}
