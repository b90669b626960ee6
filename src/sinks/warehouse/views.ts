import type { Dialect } from './dialect.js';
import { CONTENT_DIM, FACT_TABLE } from './schema.js';

/**
 * The two analytical views, defined once and rendered for either engine through a Dialect. Both
 * expose `event_date`, so a BigQuery query filtering on it prunes the fact table's partitions.
 *
 * daily_engagement_summary — one row per event_date × content_id:
 *   total_events, plays, pauses, finishes, clicks, unique_users (exact COUNT DISTINCT of non-null
 *   user_id), total_engagement_seconds (0 when no event has a duration), avg_engagement_seconds and
 *   avg_engagement_pct (over events that have one; NULL when none), completion_rate = finishes /
 *   plays (NULL when no play); content_slug/title/type from content_dim (the newest values).
 * hourly_engagement_trends — one row per hour_bucket × content_type (NULL type shown as 'unknown'):
 *   event_date, total_events, unique_users, unique_content, plays, finishes,
 *   total_engagement_seconds, avg_engagement_seconds, avg_engagement_pct.
 *
 * Both leave out the events flagged `implausible_duration` (src/processor/enrich.ts durationFlag):
 * entirely, not only their duration, so the views count what the real-time aggregates in Redis
 * count. The rows stay in the fact table, flag included, for whoever wants to look at them.
 *
 * `dedupe` (the BigQuery Storage Write API backend, whose appends do not look up what is stored):
 * the views read the fact table through `dedupedFact`, one row per event identity (event_id,
 * event_ts) — a backfill's re-send or a replay counts once. The window is partitioned by
 * event_date first, so a filter on event_date still prunes partitions through it.
 */

export interface ViewOptions {
  /** Read the fact table one row per (event_id, event_ts): for a table whose writes may repeat an event. */
  dedupe?: boolean;
}

export interface ViewDef {
  name: string;
  description: string;
  /** The SELECT the view stands for, in the dialect it was rendered for. */
  sql: string;
}

export const DAILY_SUMMARY = 'daily_engagement_summary';
export const HOURLY_TRENDS = 'hourly_engagement_trends';
/** The flag whose events the views leave out. */
export const EXCLUDED_FLAG = 'implausible_duration';

function eventCounts(d: Dialect): string[] {
  return [
    `COUNT(*) AS total_events`,
    `${d.countIf(`f.event_type = 'play'`)} AS plays`,
    `${d.countIf(`f.event_type = 'pause'`)} AS pauses`,
    `${d.countIf(`f.event_type = 'finish'`)} AS finishes`,
    `${d.countIf(`f.event_type = 'click'`)} AS clicks`,
  ];
}

const ENGAGEMENT = [
  `COALESCE(SUM(f.engagement_seconds), 0) AS total_engagement_seconds`,
  `AVG(f.engagement_seconds) AS avg_engagement_seconds`,
  `AVG(f.engagement_pct) AS avg_engagement_pct`,
];

/**
 * The fact table, or (dedupe) a subquery with the first stored copy of each event (event_date is a
 * function of event_ts, so it adds nothing to the identity but lets a date filter prune). QUALIFY
 * needs a WHERE, GROUP BY or HAVING beside it in BigQuery: `WHERE TRUE`.
 */
export function dedupedFact(d: Dialect, dedupe = true): string {
  const fact = d.table(FACT_TABLE.name);
  if (!dedupe) return fact;
  return [
    `(SELECT * FROM ${fact} WHERE TRUE`,
    `  QUALIFY ROW_NUMBER() OVER (PARTITION BY event_date, event_id, event_ts ORDER BY loaded_at, kafka_partition, kafka_offset) = 1)`,
  ].join('\n');
}

export function dailySummarySql(d: Dialect, opts: ViewOptions = {}): string {
  const fact = dedupedFact(d, opts.dedupe ?? false);
  const dim = d.table(CONTENT_DIM.name);
  return [
    `SELECT`,
    `  f.event_date,`,
    `  f.content_id,`,
    `  c.content_slug,`,
    `  c.content_title,`,
    `  c.content_type,`,
    ...eventCounts(d).map((e) => `  ${e},`),
    `  COUNT(DISTINCT f.user_id) AS unique_users,`,
    ...ENGAGEMENT.map((e) => `  ${e},`),
    `  ${d.safeDivide(d.countIf(`f.event_type = 'finish'`), d.countIf(`f.event_type = 'play'`))} AS completion_rate`,
    `FROM ${fact} AS f`,
    `LEFT JOIN ${dim} AS c ON c.content_id = f.content_id`,
    `WHERE ${d.lacks('f.quality_flags', EXCLUDED_FLAG)}`,
    `GROUP BY f.event_date, f.content_id, c.content_slug, c.content_title, c.content_type`,
  ].join('\n');
}

export function hourlyTrendsSql(d: Dialect, opts: ViewOptions = {}): string {
  const fact = dedupedFact(d, opts.dedupe ?? false);
  const [total, plays, , finishes] = eventCounts(d);
  return [
    `SELECT`,
    `  f.hour_bucket,`,
    `  f.event_date,`,
    `  COALESCE(f.content_type, 'unknown') AS content_type,`,
    `  ${total},`,
    `  COUNT(DISTINCT f.user_id) AS unique_users,`,
    `  COUNT(DISTINCT f.content_id) AS unique_content,`,
    `  ${plays},`,
    `  ${finishes},`,
    ...ENGAGEMENT.map((e, i, all) => `  ${e}${i < all.length - 1 ? ',' : ''}`),
    `FROM ${fact} AS f`,
    `WHERE ${d.lacks('f.quality_flags', EXCLUDED_FLAG)}`,
    `GROUP BY f.hour_bucket, f.event_date, COALESCE(f.content_type, 'unknown')`,
  ].join('\n');
}

export function viewDefinitions(d: Dialect, opts: ViewOptions = {}): ViewDef[] {
  return [
    {
      name: DAILY_SUMMARY,
      description:
        'Per UTC day and content: event counts by type, unique users, engagement seconds and percent, completion rate (events flagged implausible_duration left out).',
      sql: dailySummarySql(d, opts),
    },
    {
      name: HOURLY_TRENDS,
      description:
        'Per UTC hour and content type: events, unique users and content, plays, finishes, engagement (events flagged implausible_duration left out).',
      sql: hourlyTrendsSql(d, opts),
    },
  ];
}
