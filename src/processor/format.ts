import type { Config } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import { ENRICHED_AVRO_SCHEMA } from '../core/enriched-avro.js';
import type { AvroReader } from '../kafka/schema-registry/avro-reader.js';
import type { AvroWriter } from '../kafka/schema-registry/avro-writer.js';
import { connectConfiguredRegistry } from '../kafka/schema-registry/from-config.js';
import { contentChangeOf, contentTombstone, decodeContentChange, type ContentChange } from './content-decode.js';
import { decodeChange, decodeEnvelope, parseJsonObject, type DecodedChange } from './decode.js';
import { rejection } from './reasons.js';

/**
 * The processor's two front ends for its input topics (KAFKA_VALUE_FORMAT): JSON (Debezium's JSON
 * converter without schemas) and Avro (Debezium's Avro converter: the Confluent wire format, the
 * writer schemas in the registry). Both end in the same pure judgement of the parsed envelope
 * (decode.ts `decodeEnvelope`, content-decode.ts `contentChangeOf`).
 *
 * In Avro mode a record is read by its first byte: 0 (the wire format's magic byte) as Avro, any
 * other as JSON — so a topic written before the switch from JSON (or by a JSON producer) is still
 * read, and a switch needs no drain (docs/schemas.md). Avro bytes the registry cannot resolve, or
 * that do not decode with their schema, are UNDECODABLE (DECODE_FAILED) like bad JSON: to the DLQ
 * with their original bytes. JSON mode reads JSON only (no registry is needed): an Avro record
 * there is UNDECODABLE, replayable once the processor runs in Avro mode.
 */

/** What decoding the events topic needs. `prepare` once per consumed batch, before `decode`. */
export interface ChangeInput {
  /** Fetches what decoding these values needs (Avro writer schemas); throws retriably when it cannot. */
  prepare?(values: Iterable<Buffer | null>): Promise<void>;
  decode(value: Buffer | null): DecodedChange;
}

/** What decoding the content topic needs (keys too: a tombstone names its row by key only). */
export interface ContentInput {
  prepare?(keys: Iterable<Buffer | null>, values: Iterable<Buffer | null>): Promise<void>;
  decode(key: Buffer | null, value: Buffer | null): ContentChange;
}

export const JSON_CHANGES: ChangeInput = { decode: decodeChange };
export const JSON_CONTENT: ContentInput = { decode: decodeContentChange };

/** The processor's formats: its inputs, and the writer of its enriched records (absent: JSON text). */
export interface ProcessorFormat {
  events: ChangeInput;
  content: ContentInput;
  enriched?: AvroWriter;
}

export const JSON_FORMAT: ProcessorFormat = { events: JSON_CHANGES, content: JSON_CONTENT };

function isAvro(bytes: Buffer | null): bytes is Buffer {
  return bytes !== null && bytes.length > 0 && bytes[0] === 0;
}

function record(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

export function avroChanges(reader: AvroReader): ChangeInput {
  return {
    prepare: (values) => reader.prepare(values),
    decode(value) {
      if (!isAvro(value)) return decodeChange(value);
      let env: Record<string, unknown> | null;
      try {
        env = record(reader.decode(value));
      } catch (err) {
        return { kind: 'reject', error: rejection('UNDECODABLE', (err as Error).message) };
      }
      if (env === null) return { kind: 'reject', error: rejection('UNDECODABLE', 'the Avro value is not a record') };
      const change = decodeEnvelope(env);
      // Own fields only: a decoded record's prototype methods would otherwise read as extra columns.
      return change.kind === 'insert' ? { ...change, row: { ...change.row } } : change;
    },
  };
}

/** The id of a content key: Avro `Key` record or JSON `{"id": …}`; null when it has none. */
function contentKeyId(keys: AvroReader, key: Buffer | null): string | null {
  let parsed: Record<string, unknown> | string | null;
  if (isAvro(key)) {
    try {
      parsed = record(keys.decode(key));
    } catch {
      return null;
    }
  } else parsed = key === null ? null : parseJsonObject(key);
  if (parsed === null || typeof parsed === 'string') return null;
  return typeof parsed.id === 'string' && parsed.id.length > 0 ? parsed.id : null;
}

export function avroContent(values: AvroReader, keys: AvroReader): ContentInput {
  return {
    async prepare(keyBytes, valueBytes) {
      await keys.prepare(keyBytes);
      await values.prepare(valueBytes);
    },
    decode(key, value) {
      if (value === null) return contentTombstone(contentKeyId(keys, key));
      if (!isAvro(value)) return decodeContentChange(key, value);
      let env: Record<string, unknown> | null;
      try {
        env = record(values.decode(value));
      } catch (err) {
        return { kind: 'invalid', message: (err as Error).message };
      }
      if (env === null) return { kind: 'invalid', message: 'the Avro value is not a record' };
      return contentChangeOf(env, () => contentKeyId(keys, key));
    },
  };
}

/**
 * The configured formats: JSON, or (KAFKA_VALUE_FORMAT=avro) readers of the events and content
 * topics and the enriched topic's writer, its schema registered under `<enriched topic>-value`.
 */
export async function openProcessorFormat(config: Config): Promise<ProcessorFormat> {
  if (config.KAFKA_VALUE_FORMAT !== 'avro') return JSON_FORMAT;
  const registry = await connectConfiguredRegistry(config);
  let enriched: AvroWriter;
  try {
    enriched = await registry.writer(config.KAFKA_TOPIC_ENRICHED, 'value', ENRICHED_AVRO_SCHEMA);
  } catch (err) {
    if (err instanceof PipelineError) throw err;
    throw new PipelineError('SERVICE_UNREACHABLE', `registering the enriched schema: ${(err as Error).message}`, {
      retriable: true,
      cause: err,
    });
  }
  return {
    events: avroChanges(registry.reader(config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, 'value')),
    content: avroContent(
      registry.reader(config.KAFKA_TOPIC_CONTENT, 'value'),
      registry.reader(config.KAFKA_TOPIC_CONTENT, 'key'),
    ),
    enriched,
  };
}
