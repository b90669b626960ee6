import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

/**
 * Serves the live dashboard (index.html, style.css and the ES modules app.js, charts.js, format.js,
 * trend-panels.js beside this file) from memory: `/` and
 * `/dashboard/<file>`. The files hold no pipeline data (the page fetches it), so they are open
 * even when API_TOKEN is set; see auth.ts.
 */

const here = path.dirname(fileURLToPath(import.meta.url));

const JS = 'text/javascript; charset=utf-8';
const FILES: Record<string, string> = {
  'app.js': JS,
  'charts.js': JS,
  'format.js': JS,
  'trend-panels.js': JS,
  'style.css': 'text/css; charset=utf-8',
};

export const dashboardPlugin: FastifyPluginAsync = async (app) => {
  const index = await readFile(path.join(here, 'index.html'));
  const assets = new Map<string, { body: Buffer; type: string }>();
  for (const [name, type] of Object.entries(FILES))
    assets.set(name, { body: await readFile(path.join(here, name)), type });

  app.get('/', { schema: { hide: true } }, async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
      .send(index),
  );
  app.get<{ Params: { file: string } }>('/dashboard/:file', { schema: { hide: true } }, async (req, reply) => {
    const asset = assets.get(req.params.file);
    if (!asset) return reply.callNotFound();
    return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
  });
};
