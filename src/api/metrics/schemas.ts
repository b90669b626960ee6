/** JSON Schema of GET /metrics (documentation in /docs and fast serialisation); mirrors summary.ts. */

const num = { type: 'number' } as const;
const nullableNum = { type: ['number', 'null'] } as const;
const str = { type: 'string' } as const;

const counterEntry = {
  type: 'object',
  properties: { stage: str, metric: str, total: num, per_second: nullableNum },
  required: ['stage', 'metric', 'total', 'per_second'],
} as const;

export const metricsSummarySchema = {
  type: 'object',
  properties: {
    generated_at: str,
    uptime_seconds: { ...num, description: 'Uptime of this API process' },
    rate_window_seconds: { ...num, description: 'Rates and windowed percentiles cover about this much recent history' },
    components: {
      type: 'array',
      description: 'Every live process (fresh heartbeat) and this API',
      items: {
        type: 'object',
        properties: { component: str, instance: str, uptime_seconds: num, heartbeat_age_seconds: num },
        required: ['component', 'instance', 'uptime_seconds', 'heartbeat_age_seconds'],
      },
    },
    throughput: {
      type: 'array',
      description: 'Records through each stage: total since the processes started, and per second',
      items: counterEntry,
    },
    lags: {
      type: 'array',
      description:
        'Consumer lags (records, summed over instances), replication lags (ms/s, max over instances), retained WAL (bytes)',
      items: {
        type: 'object',
        properties: {
          stage: str,
          metric: str,
          unit: { type: 'string', enum: ['records', 'ms', 'seconds', 'bytes'] },
          value: num,
        },
        required: ['stage', 'metric', 'unit', 'value'],
      },
    },
    freshness: {
      type: 'array',
      description: 'End-to-end freshness (source commit to visible in the sink) per sink, from histogram buckets',
      items: {
        type: 'object',
        properties: {
          stage: str,
          metric: str,
          basis: { type: 'string', enum: ['window', 'cumulative'] },
          count: num,
          p50: nullableNum,
          p95: nullableNum,
          p99: nullableNum,
          unit: { type: 'string', enum: ['seconds', 'ms'] },
          target_seconds: {
            type: 'number',
            description: "The stage's freshness promise in seconds (Redis 5, external 30, warehouse 45; others 5)",
          },
        },
        required: ['stage', 'metric', 'basis', 'count', 'p50', 'p95', 'p99', 'unit', 'target_seconds'],
      },
    },
    dlq: { type: 'array', description: 'Records sent to the dead-letter queue, per stage', items: counterEntry },
    dlq_total: num,
  },
  required: [
    'generated_at',
    'uptime_seconds',
    'rate_window_seconds',
    'components',
    'throughput',
    'lags',
    'freshness',
    'dlq',
    'dlq_total',
  ],
} as const;

/** Query of GET /metrics/history. */
export const metricsHistoryQuery = {
  type: 'object',
  properties: {
    minutes: {
      type: 'integer',
      minimum: 1,
      maximum: 15,
      default: 15,
      description: 'accepts a whole number of minutes from 1 to 15 (the history kept); default 15',
    },
  },
  additionalProperties: false,
} as const;

/** JSON Schema of GET /metrics/history; mirrors trends.ts. */
export const metricsHistorySchema = {
  type: 'object',
  properties: {
    generated_at: str,
    step_seconds: { ...num, description: 'One point per series per step (its start time is the point time)' },
    window_seconds: { ...num, description: 'The points cover about this much recent history' },
    series: {
      type: 'array',
      description:
        'One entry per stage and statistic, in pipeline order. Within a step, throughput is the mean of the observed rates, lags and freshness the worst (max). A step without a point is a gap (the stage did not report, or had no rate yet).',
      items: {
        type: 'object',
        properties: {
          kind: { type: 'string', enum: ['throughput', 'lag', 'freshness'] },
          stage: str,
          metric: { ...str, description: 'The metric the values come from' },
          stat: {
            type: 'string',
            enum: ['per_second', 'value', 'p50', 'p99'],
            description: 'per_second (throughput), value (lag), p50/p99 (freshness over the last ~10 s)',
          },
          unit: {
            type: 'string',
            enum: ['records/s', 'records', 'seconds', 'bytes'],
            description: 'Time values (freshness, time lags) are in seconds whatever their metric uses',
          },
          points: {
            type: 'array',
            items: {
              type: 'object',
              properties: { t: { ...num, description: 'Step start, ms since the epoch' }, v: num },
              required: ['t', 'v'],
            },
          },
        },
        required: ['kind', 'stage', 'metric', 'stat', 'unit', 'points'],
      },
    },
  },
  required: ['generated_at', 'step_seconds', 'window_seconds', 'series'],
} as const;
