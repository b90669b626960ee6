/**
 * What each stage promises about freshness (source commit → visible there), in seconds: the
 * dashboard colours a stage's percentiles against it (amber above a fifth of it, red above it),
 * `/metrics` reports it with each freshness entry, and deploy/prometheus/alerts.yml's
 * EngageFreshnessAboveTarget alerts on a sink's p99 above the same figures
 * (test/api/deploy.test.ts checks that the two agree).
 *
 * - Redis: fresh within 5 s (the original promise; the p99 goal is 1 s, hence amber at 1 s);
 * - the external system: delivered within 30 s;
 * - the warehouse: batches flush within WAREHOUSE_FLUSH_SECONDS (30 s at most), then are written,
 *   so 45 s leaves the write its margin.
 * Stages without a promise of their own (CDC, processor) are held to 5 s.
 */
export const FRESHNESS_TARGET_SECONDS: Readonly<Record<string, number>> = {
  'sink-redis': 5,
  'sink-external': 30,
  'sink-warehouse': 45,
};

export const DEFAULT_FRESHNESS_TARGET_SECONDS = 5;

export function freshnessTarget(stage: string): number {
  return FRESHNESS_TARGET_SECONDS[stage] ?? DEFAULT_FRESHNESS_TARGET_SECONDS;
}
