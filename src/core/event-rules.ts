/**
 * The domain's rules on one engagement event, shared by every place that judges events: the
 * processor's validation and enrichment (src/processor), and the warehouse's bulk import, which
 * applies the same rules in SQL (src/sinks/warehouse/duckdb/bulk-import/bulk-import-sql.ts). One definition, so
 * the two ways into the warehouse can never disagree on what is valid or plausible.
 */

/** Events dated before this are rejected (EVENT_TS_BEFORE_2000). */
export const MIN_EVENT_TS_MS = Date.UTC(2000, 0, 1);
/** Events dated more than this after `now` are rejected (EVENT_TS_IN_FUTURE). */
export const MAX_FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;

/** Above this a duration is implausible whatever the content (24 h: a session does not last longer). */
export const MAX_PLAUSIBLE_DURATION_MS = 24 * 60 * 60 * 1000;
/** With a known length, a duration above length × this factor + the margin is implausible (capped by the above). */
export const PLAUSIBLE_LENGTH_FACTOR = 10;
export const PLAUSIBLE_MARGIN_MS = 60 * 60 * 1000;

/**
 * The limit above which a duration is implausible: min(24 h, length × 10 + 1 h) when the length
 * is known and positive (replays, seeking and background play stay below it), 24 h otherwise.
 */
export function plausibleDurationLimitMs(length: number | null | undefined): number {
  if (length === null || length === undefined || !(length > 0)) return MAX_PLAUSIBLE_DURATION_MS;
  return Math.min(MAX_PLAUSIBLE_DURATION_MS, length * 1000 * PLAUSIBLE_LENGTH_FACTOR + PLAUSIBLE_MARGIN_MS);
}
