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
 */

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

export function dailySummarySql(d: Dialect): string {
  const fact = d.table(FACT_TABLE.name);
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

export function hourlyTrendsSql(d: Dialect): string {
  const fact = d.table(FACT_TABLE.name);
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

export function viewDefinitions(d: Dialect): ViewDef[] {
  return [
    {
      name: DAILY_SUMMARY,
      description:
        'Per UTC day and content: event counts by type, unique users, engagement seconds and percent, completion rate (events flagged implausible_duration left out).',
      sql: dailySummarySql(d),
    },
    {
      name: HOURLY_TRENDS,
      description:
        'Per UTC hour and content type: events, unique users and content, plays, finishes, engagement (events flagged implausible_duration left out).',
      sql: hourlyTrendsSql(d),
    },
  ];
}
