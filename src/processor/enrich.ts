import type { PipelineError } from '../core/errors.js';
import type { ContentRow, EngagementEventRow, EnrichedEvent, QualityFlag } from '../core/types.js';
import { rejection } from './reasons.js';
import { validateEventRow, type ValidEvent } from './validate.js';
import { MAX_PLAUSIBLE_DURATION_MS, plausibleDurationLimitMs } from '../core/event-rules.js';

/**
 * The enrichment transform, shared by the stream processor and the backfill. Pure: the same row,
 * content and meta always give the same result, and nothing here does I/O.
 *
 * - engagement_seconds = duration_ms / 1000 (null when duration_ms is null);
 * - engagement_pct = engagement_seconds / length_seconds * 100, null when either side is null or
 *   length_seconds <= 0 (flag missing_length / non_positive_length);
 * - above 100 the value is KEPT as computed and flagged `pct_above_100` (replays, seeking and
 *   background play make it real; capping would hide it; readers cap for display if they want);
 * - event_date / event_hour are UTC buckets of event_ts;
 * - a duration no one can have spent is flagged `implausible_duration` (`durationFlag`), values
 *   KEPT: readers of aggregates leave such events out (Redis, the warehouse views), the rows stay.
 */

export interface EnrichMeta {
  /** Source commit time (ms). */
  sourceTsMs: number;
  /** Processing time (ms); also the `now` that bounds event_ts from above. */
  processedTsMs: number;
  origin: 'stream' | 'backfill';
}

export type EnrichResult = { ok: true; event: EnrichedEvent } | { ok: false; error: PipelineError };

/** engagement_pct: seconds / length × 100; null when either is null or length ≤ 0. */
export function engagementPct(seconds: number | null, length: number | null | undefined): number | null {
  if (seconds === null || length === null || length === undefined || length <= 0) return null;
  return (seconds / length) * 100;
}

/** The flag the content's length adds, if any: missing_length, non_positive_length or pct_above_100. */
export function lengthFlag(seconds: number | null, length: number | null | undefined): QualityFlag | null {
  if (length === null || length === undefined) return 'missing_length';
  if (length <= 0) return 'non_positive_length';
  return seconds !== null && (seconds / length) * 100 > 100 ? 'pct_above_100' : null;
}

export { MAX_PLAUSIBLE_DURATION_MS, plausibleDurationLimitMs };

/** `implausible_duration` when duration_ms is above `plausibleDurationLimitMs(length)`, else null. */
export function durationFlag(durationMs: number | null, length: number | null | undefined): QualityFlag | null {
  return durationMs !== null && durationMs > plausibleDurationLimitMs(length) ? 'implausible_duration' : null;
}

export function enrichEvent(row: EngagementEventRow, content: ContentRow | undefined, meta: EnrichMeta): EnrichResult {
  const valid = validateEventRow(row, meta.processedTsMs);
  if (!valid.ok) return valid;
  return enrichValidated(valid.value, content, meta);
}

/** The join and the derived fields, for a row that already passed `validateEventRow`. */
export function enrichValidated(ev: ValidEvent, content: ContentRow | undefined, meta: EnrichMeta): EnrichResult {
  if (content === undefined) {
    return {
      ok: false,
      error: rejection('UNKNOWN_CONTENT', `content ${ev.content_id} of event ${ev.event_id} is not known`, {
        field: 'content_id',
        content_id: ev.content_id,
      }),
    };
  }
  const flags: QualityFlag[] = ev.flags.slice();
  const engagementSeconds = ev.duration_ms === null ? null : ev.duration_ms / 1000;
  const length = content.length_seconds;
  const pct = engagementPct(engagementSeconds, length);
  const flag = lengthFlag(engagementSeconds, length);
  if (flag !== null) flags.push(flag);
  const implausible = durationFlag(ev.duration_ms, length);
  if (implausible !== null) flags.push(implausible);
  return {
    ok: true,
    event: {
      schema_version: 1,
      event_id: ev.event_id,
      content_id: ev.content_id,
      user_id: ev.user_id,
      event_type: ev.event_type,
      event_ts: ev.event_ts,
      duration_ms: ev.duration_ms,
      device: ev.device,
      raw_payload: ev.raw_payload,
      extra: ev.extra,
      content_slug: content.slug,
      content_title: content.title,
      content_type: content.content_type,
      length_seconds: length ?? null,
      publish_ts: content.publish_ts,
      engagement_seconds: engagementSeconds,
      engagement_pct: pct,
      event_date: ev.event_ts.slice(0, 10),
      event_hour: `${ev.event_ts.slice(0, 13)}:00:00.000Z`,
      source_ts_ms: meta.sourceTsMs,
      processed_ts_ms: meta.processedTsMs,
      origin: meta.origin,
      quality_flags: flags,
    },
  };
}
