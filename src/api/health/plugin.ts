import type { FastifyPluginAsync } from 'fastify';
import type { HealthService } from './service.js';

/**
 * /health (the whole pipeline; 200 healthy or degraded, 503 unhealthy — rules in evaluate.ts),
 * /health/live (this process answers: always 200) and /health/ready (PostgreSQL, Kafka and Redis
 * reachable: 200, else 503). Reports are cached for about a second (service.ts).
 */

export interface HealthPluginOptions {
  health: HealthService;
}

const serviceSchema = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, latency_ms: { type: 'number' }, error: { type: 'string' } },
  required: ['ok', 'latency_ms'],
} as const;

const open = { type: 'object', additionalProperties: true } as const;

const healthReportSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['healthy', 'degraded', 'unhealthy'] },
    checked_at: { type: 'string' },
    problems: { type: 'array', items: { type: 'string' } },
    warnings: { type: 'array', items: { type: 'string' } },
    services: { type: 'object', properties: { postgres: serviceSchema, kafka: serviceSchema, redis: serviceSchema } },
    replication_slot: { anyOf: [open, { type: 'null' }] },
    stages: { type: 'object', additionalProperties: open },
    warehouse: open,
    external: open,
  },
  required: ['status', 'checked_at', 'problems', 'warnings', 'services', 'stages'],
} as const;

const readySchema = {
  type: 'object',
  properties: {
    ready: { type: 'boolean' },
    checked_at: { type: 'string' },
    services: healthReportSchema.properties.services,
  },
  required: ['ready', 'checked_at', 'services'],
} as const;

export const healthPlugin: FastifyPluginAsync<HealthPluginOptions> = async (app, { health }) => {
  app.get(
    '/health',
    {
      schema: {
        tags: ['health'],
        summary: 'Health of the pipeline and each component',
        description:
          '503 when PostgreSQL, Kafka or Redis is unreachable or an expected stage (API_EXPECTED_COMPONENTS) has no fresh heartbeat; 200 with status "degraded" when the slot retains more WAL than CDC_WAL_WARN_BYTES, a consumer lag exceeds 10,000 records, the external circuit is open, the warehouse or any sink (its health() in its heartbeat) reports a problem; else 200 "healthy". Cached ~1 s.',
        response: { 200: healthReportSchema, 503: healthReportSchema },
      },
    },
    async (_req, reply) => {
      const report = await health.report();
      return reply.code(report.status === 'unhealthy' ? 503 : 200).send(report);
    },
  );

  app.get(
    '/health/live',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness: the API process answers',
        response: {
          200: { type: 'object', properties: { live: { type: 'boolean' }, uptime_seconds: { type: 'number' } } },
        },
      },
    },
    async () => ({ live: true, uptime_seconds: Math.round(process.uptime() * 10) / 10 }),
  );

  app.get(
    '/health/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: PostgreSQL, Kafka and Redis reachable',
        response: { 200: readySchema, 503: readySchema },
      },
    },
    async (_req, reply) => {
      const report = await health.report();
      const ready = Object.values(report.services).every((s) => s.ok);
      return reply.code(ready ? 200 : 503).send({ ready, checked_at: report.checked_at, services: report.services });
    },
  );
};
