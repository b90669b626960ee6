import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { ApiDeps } from '../deps.js';
import type { PromMetric } from '../heartbeats.js';
import type { HealthService } from '../health/service.js';
import { mergedRegistry, type MetricSource } from './merge.js';
import { heartbeatInputs, type ComponentInfo, type MetricsSummarizer } from './summary.js';
import { metricsSummarySchema } from './schemas.js';

/**
 * GET /metrics (JSON summary for people and the dashboard) and GET /metrics/prometheus (the text
 * exposition of every pipeline process's registry, merged; one scrape target for the whole
 * pipeline). Sources: the fresh heartbeats in Redis (each process's registry), this process's
 * registry and the API's own (HTTP and `engage_health_*`). This process's own heartbeat is
 * skipped: its live registry replaces it. With Redis down only the API's own metrics remain.
 */

export interface MetricsPluginOptions {
  deps: ApiDeps;
  health: HealthService;
  apiRegistry: Registry;
  summarizer: MetricsSummarizer;
}

async function registryJson(registry: Registry): Promise<PromMetric[]> {
  return (await registry.getMetricsAsJSON()) as unknown as PromMetric[];
}

export const metricsPlugin: FastifyPluginAsync<MetricsPluginOptions> = async (app, opts) => {
  const { deps, health, apiRegistry, summarizer } = opts;

  const collect = async (): Promise<{ sources: MetricSource[]; components: ComponentInfo[] }> => {
    const heartbeats = await health.heartbeats().catch(() => []);
    const now = Date.now();
    const others = heartbeats.filter((hb) => !(hb.component === 'api' && hb.instance === deps.instance));
    const { sources, components } = heartbeatInputs(others);
    const own = [...(await registryJson(deps.processRegistry)), ...(await registryJson(apiRegistry))];
    sources.push({ component: 'api', instance: deps.instance, atMs: now, metrics: own });
    components.push({
      component: 'api',
      instance: deps.instance,
      startedAtMs: now - process.uptime() * 1000,
      sentAtMs: now,
    });
    return { sources, components };
  };

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['metrics'],
        summary:
          'Pipeline metrics as JSON: throughput per stage, lags, freshness percentiles per sink, DLQ counts, uptime',
        description:
          "Derived from every process's metrics by the naming convention engage_<stage>_<what>_<unit>. Rates (per_second) and windowed percentiles cover the last ~10 s of heartbeats and are null on the first call.",
        response: { 200: metricsSummarySchema },
      },
    },
    async () => {
      const { sources, components } = await collect();
      return summarizer.summarize(sources, components, Date.now(), process.uptime());
    },
  );

  app.get(
    '/metrics/prometheus',
    {
      schema: {
        tags: ['metrics'],
        summary: 'Every pipeline metric in the Prometheus text format (one scrape target for the pipeline)',
        description:
          'Each series carries `component` and `instance_id` (the process); aggregate with sum/max by (...) in queries.',
        produces: ['text/plain'],
        response: { 200: { type: 'string' } },
      },
    },
    async (_req, reply) => {
      // Refresh (at most once a second) the engage_health_* gauges before rendering.
      await health.snapshot().catch(() => undefined);
      const { sources } = await collect();
      const merged = mergedRegistry(sources);
      return reply.type(merged.contentType).send(await merged.metrics());
    },
  );
};
