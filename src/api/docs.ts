import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

/**
 * The OpenAPI description, generated from the routes' schemas: /docs/json (and /docs/yaml) and a
 * browsable Swagger UI at /docs, served from the package's bundled assets (no network needed).
 * Call on the root instance (swagger must see every route) before the routes are registered.
 */
export function registerDocs(app: FastifyInstance, version: string): void {
  void app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'engagement-pipeline monitoring API',
        description:
          'Health, metrics and real-time engagement views of the pipeline (PostgreSQL CDC → Kafka → enrichment → Redis, warehouse, external system). When API_TOKEN is set, the content endpoints need `Authorization: Bearer <API_TOKEN>`; /health*, /metrics*, the dashboard and these docs stay open.',
        version,
      },
      tags: [
        { name: 'health', description: 'Liveness, readiness and the health of every component' },
        { name: 'metrics', description: 'Pipeline metrics (JSON and Prometheus)' },
        { name: 'content', description: 'Real-time engagement views from Redis' },
      ],
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'API_TOKEN' } } },
    },
  });
  void app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true },
    staticCSP: true,
  });
}
