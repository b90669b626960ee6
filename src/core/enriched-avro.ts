import type { EnrichedEvent } from './types.js';

/**
 * The enriched topic's Avro value schema (KAFKA_VALUE_FORMAT=avro; docs/schemas.md), registered by
 * the processor and the backfill under `<enriched topic>-value`, and the mapping between an
 * EnrichedEvent and its Avro record. Pure.
 *
 * Field for field the EnrichedEvent of src/core/types.ts, in its order, with two differences: the
 * values that are any JSON (`raw_payload`, the source's JSONB parsed; `extra`, the columns added
 * later) travel as their JSON text, as Debezium's `io.debezium.data.Json` does, and are parsed back
 * by `fromEnrichedAvro`. Nullable fields are unions with null first (default null), so a consumer's
 * reader schema may drop them; `quality_flags` are strings, not an enum, so a new flag is not an
 * incompatible change.
 */

const nullable = (type: string) => ({ type: ['null', type], default: null });

export const ENRICHED_AVRO_SCHEMA = {
  type: 'record',
  name: 'EnrichedEvent',
  namespace: 'engagement.enriched',
  doc: 'An engagement event joined with its content (engagement-pipeline, docs/processor.md)',
  fields: [
    { name: 'schema_version', type: 'int' },
    { name: 'event_id', type: 'string', doc: 'engagement_events.id (int8) as decimal text' },
    { name: 'content_id', type: 'string' },
    { name: 'user_id', ...nullable('string') },
    { name: 'event_type', type: 'string' },
    { name: 'event_ts', type: 'string', doc: 'ISO-8601 UTC, the source fraction digits kept' },
    { name: 'duration_ms', ...nullable('long') },
    { name: 'device', ...nullable('string') },
    { name: 'raw_payload', type: 'string', doc: 'JSON text of the raw payload (the source JSONB)' },
    { name: 'extra', type: 'string', doc: 'JSON text of an object: source columns added later' },
    { name: 'content_slug', type: 'string' },
    { name: 'content_title', type: 'string' },
    { name: 'content_type', ...nullable('string') },
    { name: 'length_seconds', ...nullable('long') },
    { name: 'publish_ts', type: 'string' },
    { name: 'engagement_seconds', ...nullable('double') },
    { name: 'engagement_pct', ...nullable('double') },
    { name: 'event_date', type: 'string' },
    { name: 'event_hour', type: 'string' },
    { name: 'source_ts_ms', type: 'long' },
    { name: 'processed_ts_ms', type: 'long' },
    { name: 'origin', type: 'string' },
    { name: 'quality_flags', type: { type: 'array', items: 'string' } },
  ],
} as const;

/** The Avro record of an enriched event (what an AvroWriter of ENRICHED_AVRO_SCHEMA encodes). */
export type EnrichedAvroRecord = Omit<EnrichedEvent, 'raw_payload' | 'extra'> & { raw_payload: string; extra: string };

export function toEnrichedAvro(e: EnrichedEvent): EnrichedAvroRecord {
  return {
    schema_version: e.schema_version,
    event_id: e.event_id,
    content_id: e.content_id,
    user_id: e.user_id,
    event_type: e.event_type,
    event_ts: e.event_ts,
    duration_ms: e.duration_ms,
    device: e.device,
    raw_payload: JSON.stringify(e.raw_payload ?? null),
    extra: JSON.stringify(e.extra ?? {}),
    content_slug: e.content_slug,
    content_title: e.content_title,
    content_type: e.content_type,
    length_seconds: e.length_seconds,
    publish_ts: e.publish_ts,
    engagement_seconds: e.engagement_seconds,
    engagement_pct: e.engagement_pct,
    event_date: e.event_date,
    event_hour: e.event_hour,
    source_ts_ms: e.source_ts_ms,
    processed_ts_ms: e.processed_ts_ms,
    origin: e.origin,
    quality_flags: e.quality_flags,
  };
}

function jsonField(r: Record<string, unknown>, name: string): unknown {
  const v = r[name];
  return typeof v === 'string' ? (JSON.parse(v) as unknown) : (v ?? null);
}

/**
 * The enriched event of a decoded Avro record (any version of the schema: a field a later version
 * adds is kept, as JSON would keep it), as a plain object in the EnrichedEvent's field order — what
 * JSON.parse of the JSON-mode record gives. A string when it is not one (the caller parks it).
 */
export function fromEnrichedAvro(decoded: unknown): EnrichedEvent | string {
  if (decoded === null || typeof decoded !== 'object') return 'the Avro record is not a record';
  const r = decoded as Record<string, unknown>;
  if (typeof r.event_id !== 'string' || r.event_id.length === 0) return 'the Avro record has no event_id';
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(r)) out[key] = r[key];
  try {
    out.raw_payload = jsonField(r, 'raw_payload');
    const extra = jsonField(r, 'extra');
    out.extra = extra !== null && typeof extra === 'object' ? extra : {};
  } catch (err) {
    return `the Avro record's JSON text does not parse: ${(err as Error).message}`;
  }
  if (Array.isArray(r.quality_flags)) out.quality_flags = [...(r.quality_flags as unknown[])];
  return out as unknown as EnrichedEvent;
}
