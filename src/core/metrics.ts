import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The process's Prometheus registry. Every component registers its metrics here, named
 * `engage_<stage>_<what>_<unit>` with a `component`/`sink` label where several share a name.
 * Each component process publishes this registry (see src/api/metrics-publisher.ts) so the API can
 * serve the whole pipeline's metrics, whichever process produced them.
 */
export const registry = new Registry();

let defaultsOn = false;

/** Process metrics (CPU, RSS, event loop lag) with a `component` label; call once per process. */
export function enableDefaultMetrics(component: string): void {
  if (defaultsOn) return;
  defaultsOn = true;
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry, prefix: 'engage_process_' });
}

/**
 * Buckets (seconds) for freshness: source commit → done at a stage (the CDC's Kafka commit, the
 * processor's, visible in a sink). 5 ms steps up to 50 ms, so a hop of 10 ms is told from one of
 * 50 ms; then coarser up to the minutes an outage lasts.
 */
export const FRESHNESS_BUCKETS = [
  0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4,
  0.5, 0.6, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300,
];
/**
 * Buckets (seconds) for a batch's or a transaction's latency. Up to two minutes: a sink's batch
 * duration counts its retries, and a warehouse group transaction on a saturated machine took over
 * 10 s (docs/benchmarks.md history, 2026-11-27), which a top bucket of 10 s could not tell apart.
 */
export const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
