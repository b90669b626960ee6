import { Counter, Gauge, Histogram } from 'prom-client';
import { LATENCY_BUCKETS, registry } from '../../core/metrics.js';
import type { CircuitState } from './circuit-breaker.js';
import type { RequestOutcome } from './http-client.js';

/**
 * The external sink's metrics on the process registry. Registered once per process (several sink
 * instances, e.g. in tests, share them).
 *   engage_sink_external_requests_total{outcome}        2xx 3xx 4xx 429 5xx network timeout circuit_open
 *   engage_sink_external_request_duration_seconds{outcome}
 *   engage_sink_external_events_total                   events acknowledged by a 2xx
 *   engage_sink_external_circuit_state                  0 closed, 1 half-open, 2 open
 */

export type Outcome = RequestOutcome | 'circuit_open';

export interface ExternalMetrics {
  requests: Counter<'outcome'>;
  duration: Histogram<'outcome'>;
  events: Counter;
  circuit: Gauge;
}

let metrics: ExternalMetrics | undefined;

export function externalMetrics(): ExternalMetrics {
  metrics ??= {
    requests: new Counter({
      name: 'engage_sink_external_requests_total',
      help: 'Requests to the external system by outcome (HTTP status class, network, timeout, circuit_open)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'engage_sink_external_request_duration_seconds',
      help: 'Latency of a batch POST to the external system',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    events: new Counter({
      name: 'engage_sink_external_events_total',
      help: 'Events acknowledged by the external system (2xx)',
      registers: [registry],
    }),
    circuit: new Gauge({
      name: 'engage_sink_external_circuit_state',
      help: 'Circuit breaker state towards the external system: 0 closed, 1 half-open, 2 open',
      registers: [registry],
    }),
  };
  return metrics;
}

export function circuitGaugeValue(state: CircuitState): number {
  return state === 'closed' ? 0 : state === 'half-open' ? 1 : 2;
}
