import { AggregatorRegistry, type Registry } from 'prom-client';
import type { PromMetric, PromSample } from '../heartbeats.js';

/**
 * Merges the registries of every pipeline process into one, for /metrics/prometheus and /metrics.
 *
 * Every sample is first labelled with the process it came from (`instance_id`, plus `component`
 * when the process did not set it), so two processes never produce the same series: nothing is
 * summed, averaged or dropped behind the operator's back (prom-client's cluster aggregator would
 * otherwise sum gauges such as a consumer lag or a slot's WAL, and omit start times). Prometheus
 * queries aggregate explicitly instead: `sum by (sink) (...)`, `max by (...) (...)`.
 * The label is `instance_id`, not `instance`, because Prometheus reserves `instance` for the target.
 */

export const INSTANCE_LABEL = 'instance_id';

export interface MetricSource {
  component: string;
  instance: string;
  /** When the sample was taken (heartbeat sent_at, or now for the API's own registries). */
  atMs: number;
  metrics: PromMetric[];
}

/** The source's metrics with `instance_id` and `component` on every sample (a copy). */
export function labelSource(source: MetricSource): PromMetric[] {
  return source.metrics.map((m) => ({
    name: m.name,
    help: m.help,
    type: m.type,
    aggregator: 'sum',
    values: m.values.map((v): PromSample => {
      const labels: Record<string, string | number> = { component: source.component, ...v.labels };
      labels[INSTANCE_LABEL] = source.instance;
      // JSON has no NaN: a NaN gauge crosses the heartbeat as null.
      const value = typeof v.value === 'number' ? v.value : Number.NaN;
      return v.metricName === undefined ? { value, labels } : { value, labels, metricName: v.metricName };
    }),
  }));
}

/**
 * All sources' metric families, one per name. A family whose type differs from the first source's
 * (two versions of a component disagreeing) keeps the first type and drops the others' samples,
 * so the exposition stays parseable.
 */
export function mergeFamilies(sources: MetricSource[]): PromMetric[] {
  const byName = new Map<string, PromMetric>();
  for (const source of sources) {
    for (const m of labelSource(source)) {
      const seen = byName.get(m.name);
      if (!seen) byName.set(m.name, { ...m, values: [...m.values] });
      else if (seen.type === m.type) seen.values.push(...m.values);
    }
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** A prom-client Registry holding the merged families (its `metrics()` is the text exposition). */
export function mergedRegistry(sources: MetricSource[]): Registry {
  return AggregatorRegistry.aggregate([mergeFamilies(sources)]);
}
