import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../../config/load.js';
import type { RedisReader, TopContentEntry } from '../../sinks/redis/read.js';
import { errorBodySchema, HttpError } from '../errors.js';
import { Coalescer } from './coalesce.js';
import {
  idParams,
  recentQuery,
  recentResponse,
  statsQuery,
  statsResponse,
  topContentQuery,
  topContentResponse,
} from './schemas.js';

/**
 * The real-time views the Redis sink maintains (src/sinks/redis/read.ts): top content of the
 * sliding window, one content's stats, its recent events. Parameters are validated by schema (400
 * naming what is accepted); content Redis does not know gets 404. /top-content answers are
 * coalesced for TOP_CONTENT_CACHE_MS (the Redis reader itself reuses a window union for 200 ms), so
 * polling dashboards and load cost Redis one script call per parameter set per 100 ms.
 */

export const TOP_CONTENT_CACHE_MS = 100;

export interface ContentPluginOptions {
  config: Config;
  reader: RedisReader;
  /** How long a /top-content answer is reused (default TOP_CONTENT_CACHE_MS; 0 = never). */
  topCacheMs?: number;
}

const errors = { 400: errorBodySchema, 401: errorBodySchema, 503: errorBodySchema } as const;
const security = [{ bearerAuth: [] }];

export const contentPlugin: FastifyPluginAsync<ContentPluginOptions> = async (app, { config, reader, topCacheMs }) => {
  const maxWindow = config.REDIS_AGGREGATION_WINDOW_MINUTES;
  const top = new Coalescer<TopContentEntry[]>(topCacheMs ?? TOP_CONTENT_CACHE_MS);

  app.get<{ Querystring: { limit: number; window?: number; by: 'engagement' | 'events' } }>(
    '/top-content',
    {
      schema: {
        tags: ['content'],
        summary: 'Top content of the sliding window',
        description:
          'Ranked by total engagement seconds (by=engagement) or by event count (by=events) over the last `window` minutes.',
        querystring: topContentQuery(maxWindow),
        response: { 200: topContentResponse, ...errors },
        security,
      },
    },
    async (req) => {
      const windowMinutes = req.query.window ?? maxWindow;
      const { limit, by } = req.query;
      const items = await top.get(`${limit}:${windowMinutes}:${by}`, () =>
        reader.topContent({ limit, windowMinutes, by }),
      );
      return { window_minutes: windowMinutes, by, limit, items };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { window?: number } }>(
    '/content/:id/stats',
    {
      schema: {
        tags: ['content'],
        summary: "One content item's engagement stats over the window",
        params: idParams,
        querystring: statsQuery(maxWindow),
        response: { 200: statsResponse, 404: errorBodySchema, ...errors },
        security,
      },
    },
    async (req) => {
      const id = req.params.id.toLowerCase();
      const windowMinutes = req.query.window ?? maxWindow;
      const stats = await reader.contentStats(id, windowMinutes);
      if (!stats)
        throw new HttpError(
          404,
          'UNKNOWN_CONTENT',
          `content ${id} is unknown: no engagement recorded for it in the last ${maxWindow} minutes`,
        );
      return stats;
    },
  );

  app.get<{ Params: { id: string }; Querystring: { count: number } }>(
    '/content/:id/recent',
    {
      schema: {
        tags: ['content'],
        summary: "One content item's most recent events, newest first",
        params: idParams,
        querystring: recentQuery(config.REDIS_RECENT_EVENTS),
        response: { 200: recentResponse, 404: errorBodySchema, ...errors },
        security,
      },
    },
    async (req) => {
      const id = req.params.id.toLowerCase();
      const events = await reader.recentEvents(id, req.query.count);
      if (events.length === 0 && (await reader.contentStats(id)) === null) {
        throw new HttpError(
          404,
          'UNKNOWN_CONTENT',
          `content ${id} is unknown: no engagement recorded for it in the last ${maxWindow} minutes`,
        );
      }
      return { content_id: id, count: events.length, events };
    },
  );
};
