import { createRequire } from 'node:module';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';
import type { Config } from '../config/load.js';
import { LATENCY_BUCKETS } from '../core/metrics.js';
import type { Logger } from '../core/logger.js';
import { bearerAuth } from './auth.js';
import { contentPlugin } from './content/plugin.js';
import { dashboardPlugin } from './dashboard/plugin.js';
import type { ApiDeps } from './deps.js';
import { registerDocs } from './docs.js';
import { formatSchemaError, installErrorHandlers } from './errors.js';
import { healthPlugin } from './health/plugin.js';
import { HealthService } from './health/service.js';
import { metricsPlugin } from './metrics/plugin.js';
import { MetricsSummarizer } from './metrics/summary.js';

/**
 * The monitoring API as a Fastify instance, not listening: `inject()` it in tests, `listen()` it in
 * `startApi`. Each concern is a plugin with its own scope (health, metrics, content, docs,
 * dashboard). The API's own metrics (HTTP requests, `engage_health_*`) live on a registry of this
 * instance, so several instances in one process (tests) never collide.
 */

export interface BuildOptions {
  /** pino logger for request errors; silent when absent. */
  log?: Logger;
}

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

export function buildApi(config: Config, deps: ApiDeps, opts: BuildOptions = {}): FastifyInstance {
  const app = Fastify({
    ...(opts.log ? { loggerInstance: opts.log } : { logger: false }),
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { verbose: true, removeAdditional: false, coerceTypes: true } },
    schemaErrorFormatter: formatSchemaError,
    keepAliveTimeout: 65_000,
    // The instance is typed by its logger; plugins take the default (FastifyBaseLogger) flavour.
  }) as unknown as FastifyInstance;

  const apiRegistry = new Registry();
  const health = new HealthService(config, deps, apiRegistry);
  const summarizer = new MetricsSummarizer();
  const requests = new Counter({
    name: 'engage_api_http_requests_total',
    help: 'HTTP requests answered by the monitoring API, by route and status code',
    labelNames: ['method', 'route', 'status_code'],
    registers: [apiRegistry],
  });
  const duration = new Histogram({
    name: 'engage_api_http_request_duration_seconds',
    help: 'Time to answer an HTTP request of the monitoring API, by route',
    labelNames: ['route'],
    buckets: LATENCY_BUCKETS,
    registers: [apiRegistry],
  });

  installErrorHandlers(app);
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ method: req.method, route, status_code: String(reply.statusCode) });
    duration.observe({ route }, reply.elapsedTime / 1000);
  });
  const auth = bearerAuth(config.API_TOKEN);
  if (auth) app.addHook('onRequest', auth);

  registerDocs(app, pkg.version);
  void app.register(healthPlugin, { health });
  void app.register(metricsPlugin, { deps, health, apiRegistry, summarizer });
  void app.register(contentPlugin, { config, reader: deps.reader });
  void app.register(dashboardPlugin);
  return app;
}
