import type { SinkBatch } from '../../../src/core/sink-contract.js';
import type { EnrichedEvent } from '../../../src/core/types.js';

/** Enriched events and sink batches for the external sink's tests and bench. */

export function makeEvent(id: string, over: Partial<EnrichedEvent> = {}): EnrichedEvent {
  const ts = '2025-03-01T12:34:56.000Z';
  return {
    schema_version: 1,
    event_id: id,
    content_id: `c-${Number(id) % 7}`,
    user_id: `user-${Number(id) % 97}`,
    event_type: 'play',
    event_ts: ts,
    duration_ms: 42_000,
    device: 'ios',
    raw_payload: { source: 'test' },
    extra: {},
    content_slug: 'a-slug',
    content_title: 'A title',
    content_type: 'podcast',
    length_seconds: 600,
    publish_ts: '2025-01-01T00:00:00.000Z',
    engagement_seconds: 42,
    engagement_pct: 7,
    event_date: '2025-03-01',
    event_hour: '2025-03-01T12:00:00.000Z',
    source_ts_ms: Date.parse(ts),
    processed_ts_ms: Date.parse(ts) + 5,
    origin: 'stream',
    quality_flags: [],
    ...over,
  };
}

/** A batch of the given event ids on partition 0, offsets from `firstOffset`. */
export function makeBatch(ids: string[], firstOffset = 0, topic = 'enriched'): SinkBatch {
  return {
    topic,
    partition: 0,
    records: ids.map((id, i) => ({
      topic,
      partition: 0,
      offset: String(firstOffset + i),
      key: null,
      event: makeEvent(id),
    })),
    nextOffset: String(firstOffset + ids.length),
  };
}

export function range(from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => String(from + i));
}
