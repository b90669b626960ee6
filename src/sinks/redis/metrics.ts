import { Counter } from 'prom-client';
import { registry } from '../../core/metrics.js';

/**
 * The Redis sink's own metrics on the process registry (the runtime adds records in/out, batch
 * latency and freshness for every sink). Registered once per process; several sink instances
 * (tests, benchmarks) share them.
 *   engage_sink_redis_events_total{result}   applied | duplicate | below_offset | replayed | too_old | invalid | implausible
 *   engage_sink_redis_state_lost_total        writes that found the Redis state wiped or rolled back
 */

export type EventResult = 'applied' | 'duplicate' | 'below_offset' | 'replayed' | 'too_old' | 'invalid' | 'implausible';

export interface RedisSinkMetrics {
  events: Counter<'result'>;
  stateLost: Counter;
}

let metrics: RedisSinkMetrics | undefined;

export function redisSinkMetrics(): RedisSinkMetrics {
  metrics ??= {
    events: new Counter({
      name: 'engage_sink_redis_events_total',
      help: 'Events seen by the Redis sink by result: applied, duplicate (event id already in the window), below_offset or replayed (already applied batch), too_old (event time before the window), invalid, implausible (flagged implausible_duration: kept out of the aggregates)',
      labelNames: ['result'],
      registers: [registry],
    }),
    stateLost: new Counter({
      name: 'engage_sink_redis_state_lost_total',
      help: 'Writes that found the Redis sink state wiped or rolled back (SINK_STATE_LOST; the window is rebuilt from Kafka)',
      registers: [registry],
    }),
  };
  return metrics;
}
