import type { ContentRow, EngagementEventRow } from '../../src/core/types.js';

/** The processor's transform tests' shared clock, content row and event row (enrich.test.ts, decode.test.ts). */

export const NOW = Date.UTC(2025, 5, 15, 12, 0, 0);
export const CONTENT: ContentRow = {
  id: '11111111-1111-4111-8111-111111111111',
  slug: 'ep-1',
  title: 'Episode 1',
  content_type: 'podcast',
  length_seconds: 60,
  publish_ts: '2025-01-01T00:00:00Z',
};

/** A valid engagement event row of CONTENT, with `over` applied. */
export function row(over: Record<string, unknown> = {}): EngagementEventRow {
  return {
    id: '42',
    content_id: CONTENT.id,
    user_id: '22222222-2222-4222-8222-222222222222',
    event_type: 'play',
    event_ts: '2025-06-15T10:20:30.123456Z',
    duration_ms: 30000,
    device: 'ios',
    raw_payload: '{"app":"web","v":2}',
    ...over,
  } as EngagementEventRow;
}
