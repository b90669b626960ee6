import type { EnrichedEvent, EventType, QualityFlag } from '../../core/types.js';

/**
 * What a recent-events list stores per event: a projection of the enriched event holding what the
 * API's `/content/:id/recent` shows, as a compact JSON array (about 110 bytes instead of the whole
 * event's ~700). The content's metadata (slug, title, type, length) is not repeated per event: the
 * reader joins it from the content hash (`<p>content:<id>`, the latest metadata seen), and the
 * event date and hour are derived from `event_ts`. Left out: `raw_payload`, `extra`, `publish_ts`,
 * `source_ts_ms`, `processed_ts_ms` (the warehouse and the external system keep whole events).
 *
 * The member is unique per event (it starts with the event id); its score is the event time (ms).
 */

/** One recent event as the reader returns it. */
export type RecentEvent = Pick<
  EnrichedEvent,
  | 'event_id'
  | 'content_id'
  | 'user_id'
  | 'event_type'
  | 'event_ts'
  | 'duration_ms'
  | 'device'
  | 'engagement_seconds'
  | 'engagement_pct'
  | 'origin'
  | 'quality_flags'
  | 'event_date'
  | 'event_hour'
> & {
  content_slug: string | null;
  content_title: string | null;
  content_type: string | null;
  length_seconds: number | null;
};

type Stored = [
  string,
  string | null,
  EventType,
  string,
  number | null,
  string | null,
  number | null,
  number | null,
  EnrichedEvent['origin'],
  QualityFlag[],
];

/** The list member of one event (a JSON array, field order fixed by `Stored`). */
export function encodeRecent(ev: EnrichedEvent): string {
  const row: Stored = [
    ev.event_id,
    ev.user_id ?? null,
    ev.event_type,
    ev.event_ts,
    ev.duration_ms ?? null,
    ev.device ?? null,
    ev.engagement_seconds ?? null,
    ev.engagement_pct ?? null,
    ev.origin,
    ev.quality_flags ?? [],
  ];
  return JSON.stringify(row);
}

export interface ContentMeta {
  slug: string | null;
  title: string | null;
  type: string | null;
  length: number | null;
}

/** A stored member back as a RecentEvent of `contentId`, with the content's current metadata. */
export function decodeRecent(member: string, contentId: string, meta: ContentMeta): RecentEvent {
  const [id, user, type, ts, duration, device, eng, pct, origin, flags] = JSON.parse(member) as Stored;
  return {
    event_id: id,
    content_id: contentId,
    user_id: user,
    event_type: type,
    event_ts: ts,
    duration_ms: duration,
    device,
    engagement_seconds: eng,
    engagement_pct: pct,
    origin,
    quality_flags: flags,
    event_date: ts.slice(0, 10),
    event_hour: `${ts.slice(0, 13)}:00:00.000Z`,
    content_slug: meta.slug,
    content_title: meta.title,
    content_type: meta.type,
    length_seconds: meta.length,
  };
}
