/**
 * Request and response schemas of the content endpoints. Each parameter's `description` says what
 * it accepts: /docs shows it, and a 400 repeats it (src/api/errors.ts formatSchemaError).
 * Query strings reject unknown parameters, so a typo (`limt=5`) is an error, not silently ignored.
 */

export const MAX_TOP_LIMIT = 100;

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

const nullableStr = { type: ['string', 'null'] } as const;
const nullableNum = { type: ['number', 'null'] } as const;

function windowParam(maxWindow: number) {
  return {
    type: 'integer',
    minimum: 1,
    maximum: maxWindow,
    description: `accepts a whole number of minutes from 1 to ${maxWindow} (REDIS_AGGREGATION_WINDOW_MINUTES); default ${maxWindow}`,
  } as const;
}

export const idParams = {
  type: 'object',
  properties: {
    id: {
      type: 'string',
      pattern: UUID_PATTERN,
      description: 'accepts a content id: a UUID such as 3f2b8c1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b',
    },
  },
  required: ['id'],
  additionalProperties: false,
} as const;

export function topContentQuery(maxWindow: number) {
  return {
    type: 'object',
    properties: {
      limit: {
        type: 'integer',
        minimum: 1,
        maximum: MAX_TOP_LIMIT,
        default: 10,
        description: `accepts a whole number from 1 to ${MAX_TOP_LIMIT}; default 10`,
      },
      window: windowParam(maxWindow),
      by: {
        type: 'string',
        enum: ['engagement', 'events'],
        default: 'engagement',
        description: 'accepts engagement (total engagement seconds) or events (event count); default engagement',
      },
    },
    additionalProperties: false,
  } as const;
}

export function statsQuery(maxWindow: number) {
  return { type: 'object', properties: { window: windowParam(maxWindow) }, additionalProperties: false } as const;
}

export function recentQuery(maxRecent: number) {
  const dflt = Math.min(20, maxRecent);
  return {
    type: 'object',
    properties: {
      count: {
        type: 'integer',
        minimum: 1,
        maximum: maxRecent,
        default: dflt,
        description: `accepts a whole number from 1 to ${maxRecent} (REDIS_RECENT_EVENTS); default ${dflt}`,
      },
    },
    additionalProperties: false,
  } as const;
}

const topEntry = {
  type: 'object',
  properties: {
    rank: { type: 'integer' },
    content_id: { type: 'string' },
    slug: nullableStr,
    title: nullableStr,
    content_type: nullableStr,
    engagement_seconds: { type: 'number' },
    events: { type: 'integer' },
  },
  required: ['rank', 'content_id', 'slug', 'title', 'content_type', 'engagement_seconds', 'events'],
} as const;

export const topContentResponse = {
  type: 'object',
  properties: {
    window_minutes: { type: 'integer' },
    by: { type: 'string' },
    limit: { type: 'integer' },
    items: { type: 'array', items: topEntry },
  },
  required: ['window_minutes', 'by', 'limit', 'items'],
} as const;

export const statsResponse = {
  type: 'object',
  properties: {
    content_id: { type: 'string' },
    window_minutes: { type: 'integer' },
    slug: nullableStr,
    title: nullableStr,
    content_type: nullableStr,
    events: { type: 'integer' },
    plays: { type: 'integer' },
    pauses: { type: 'integer' },
    finishes: { type: 'integer' },
    clicks: { type: 'integer' },
    unique_users: { type: 'integer' },
    total_engagement_seconds: { type: 'number' },
    avg_engagement_seconds: nullableNum,
    avg_engagement_pct: nullableNum,
    completion_rate: nullableNum,
    last_event_ts: nullableStr,
  },
  required: [
    'content_id',
    'window_minutes',
    'events',
    'plays',
    'pauses',
    'finishes',
    'clicks',
    'unique_users',
    'total_engagement_seconds',
  ],
} as const;

export const recentResponse = {
  type: 'object',
  properties: {
    content_id: { type: 'string' },
    count: { type: 'integer' },
    events: {
      type: 'array',
      description:
        'Recent events, newest first: a projection of the enriched event with the content metadata joined (src/sinks/redis/recent-event.ts RecentEvent; no raw_payload, extra, publish_ts, source_ts_ms, processed_ts_ms)',
      items: { type: 'object', additionalProperties: true },
    },
  },
  required: ['content_id', 'count', 'events'],
} as const;
