import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { ApiDeps } from '../deps.js';
import { errorBodySchema } from '../errors.js';
import type { HealthService } from '../health/service.js';
import { mergedRegistry } from './merge.js';
import { MetricsSampler } from './sampler.js';
import type { MetricsSummarizer } from './summary.js';
import { metricsHistoryQuery, metricsHistorySchema, metricsSummarySchema } from './schemas.js';
import { TrendHistory } from './trends.js';

/**
 * GET /metrics (JSON summary for people and the dashboard), GET /metrics/history (the last 15
 * minutes of each stage's throughput, lags and freshness, for the dashboard's charts) and GET
 * /metrics/prometheus (the text exposition of every pipeline process's registry, merged; one
 * scrape target for the whole pipeline). Inputs come from the MetricsSampler (sampler.ts), which
 * also samples in the background from the moment the API is ready until it closes.
 */

export interface MetricsPluginOptions {
  deps: ApiDeps;
  health: HealthService;
  apiRegistry: Registry;
  summarizer: MetricsSummarizer;
  /** Where the trend points go (default: a TrendHistory of 15 minutes at 5 s steps). */
  trends?: TrendHistory;
  /** Background sampling interval (default: one trend step). */
  sampleEveryMs?: number;
}

export const metricsPlugin: FastifyPluginAsync<MetricsPluginOptions> = async (app, opts) => {
  const { deps, health, apiRegistry, summarizer } = opts;
  const trends = opts.trends ?? new TrendHistory();
  const sampler = new MetricsSampler({ deps, health, apiRegistry, summarizer, trends }, opts.sampleEveryMs);
  app.addHook('onReady', async () => sampler.start());
  app.addHook('onClose', async () => sampler.stop());

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['metrics'],
        summary:
          'Pipeline metrics as JSON: throughput per stage, lags, freshness percentiles per sink, DLQ counts, uptime',
        description:
          "Derived from every process's metrics by the naming convention engage_<stage>_<what>_<unit>. Rates (per_second) and windowed percentiles cover the last ~10 s of heartbeats; a rate is null until the API has seen two heartbeats of a process (or one, for a process started within the window).",
        response: { 200: metricsSummarySchema },
      },
    },
    async () => sampler.sample(),
  );

  app.get<{ Querystring: { minutes: number } }>(
    '/metrics/history',
    {
      schema: {
        tags: ['metrics'],
        summary: 'The last minutes of each stage: throughput, lags and freshness over time (the dashboard charts)',
        description: `Points every ${trends.stepMs / 1000} s per series, kept for ${trends.retentionMs / 60_000} minutes in the API's memory (sampled in the background while the API runs; a restarted API starts empty).`,
        querystring: metricsHistoryQuery,
        response: { 200: metricsHistorySchema, 400: errorBodySchema },
      },
    },
    async (req) => {
      const now = Date.now();
      const windowMs = req.query.minutes * 60_000;
      return {
        generated_at: new Date(now).toISOString(),
        step_seconds: trends.stepMs / 1000,
        window_seconds: Math.min(windowMs, trends.retentionMs) / 1000,
        series: trends.read(now, windowMs),
      };
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
      const { sources } = await sampler.collect();
      const merged = mergedRegistry(sources);
      return reply.type(merged.contentType).send(await merged.metrics());
    },
  );
};
