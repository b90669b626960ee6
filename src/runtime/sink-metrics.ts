import { Counter, Gauge, Histogram } from 'prom-client';
import { FRESHNESS_BUCKETS, LATENCY_BUCKETS, registry } from '../core/metrics.js';

/**
 * The sink runtime's Prometheus metrics, one series per sink (label `sink`). Registered once per
 * process on the shared `registry` (several runners in one process share the definitions).
 */

export interface SinkMetrics {
  recordsIn: Counter.Internal;
  recordsOut: Counter.Internal;
  dlq: Counter.Internal;
  retries: Counter.Internal;
  errors: Counter.Internal;
  stateLost: Counter.Internal;
  batchSeconds: Histogram.Internal<'sink'>;
  freshnessSeconds: Histogram.Internal<'sink'>;
  lag: Gauge.Internal<'sink'>;
  /** Batches offered to the sink's fast path (`writeEncoded`), by what became of them. */
  fastPath: Record<FastPathOutcome, Counter.Internal>;
}

export type FastPathOutcome = 'written' | 'declined' | 'failed';

interface Definitions {
  recordsIn: Counter<'sink'>;
  recordsOut: Counter<'sink'>;
  dlq: Counter<'sink'>;
  retries: Counter<'sink'>;
  errors: Counter<'sink'>;
  stateLost: Counter<'sink'>;
  batchSeconds: Histogram<'sink'>;
  freshnessSeconds: Histogram<'sink'>;
  lag: Gauge<'sink'>;
  fastPath: Counter<'sink' | 'outcome'>;
}

let defs: Definitions | undefined;

function definitions(): Definitions {
  if (defs) return defs;
  const labelNames = ['sink'] as ['sink'];
  const registers = [registry];
  defs = {
    recordsIn: new Counter({
      name: 'engage_sink_records_in_total',
      help: 'Records consumed from Kafka by the sink runner',
      labelNames,
      registers,
    }),
    recordsOut: new Counter({
      name: 'engage_sink_records_out_total',
      help: 'Records written to the sink',
      labelNames,
      registers,
    }),
    dlq: new Counter({
      name: 'engage_sink_dlq_total',
      help: 'Records sent to the dead-letter queue (confirmed)',
      labelNames,
      registers,
    }),
    retries: new Counter({
      name: 'engage_sink_retries_total',
      help: 'Batch write attempts retried after a retriable failure',
      labelNames,
      registers,
    }),
    errors: new Counter({
      name: 'engage_sink_errors_total',
      help: 'Failed write attempts, DLQ or commit failures',
      labelNames,
      registers,
    }),
    stateLost: new Counter({
      name: 'engage_sink_state_lost_total',
      help: 'Times the sink reported its state gone and the runner re-positioned',
      labelNames,
      registers,
    }),
    batchSeconds: new Histogram({
      name: 'engage_sink_batch_duration_seconds',
      help: 'Time to write one batch, retries included',
      labelNames,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    freshnessSeconds: new Histogram({
      name: 'engage_sink_freshness_seconds',
      help: 'End-to-end freshness: source commit (source_ts_ms) to written in the sink',
      labelNames,
      buckets: FRESHNESS_BUCKETS,
      registers,
    }),
    lag: new Gauge({
      name: 'engage_sink_consumer_lag',
      help: 'Records in the topic not yet settled by this sink (high watermark - position)',
      labelNames,
      registers,
    }),
    fastPath: new Counter({
      name: 'engage_sink_fast_path_batches_total',
      help: "Batches offered to the sink's fast path for undecoded records (writeEncoded): written, declined (a record it does not pass; the batch went the checked way) or failed (the same)",
      labelNames: ['sink', 'outcome'],
      registers,
    }),
  };
  return defs;
}

export function sinkMetrics(sink: string): SinkMetrics {
  const d = definitions();
  const l = { sink };
  // Counters are reported from the start (0), so rates and DLQ growth are defined before the first event.
  for (const c of [d.recordsIn, d.recordsOut, d.dlq, d.retries, d.errors, d.stateLost]) c.labels(l).inc(0);
  return {
    recordsIn: d.recordsIn.labels(l),
    recordsOut: d.recordsOut.labels(l),
    dlq: d.dlq.labels(l),
    retries: d.retries.labels(l),
    errors: d.errors.labels(l),
    stateLost: d.stateLost.labels(l),
    batchSeconds: d.batchSeconds.labels(l),
    freshnessSeconds: d.freshnessSeconds.labels(l),
    lag: d.lag.labels(l),
    fastPath: {
      written: d.fastPath.labels({ sink, outcome: 'written' }),
      declined: d.fastPath.labels({ sink, outcome: 'declined' }),
      failed: d.fastPath.labels({ sink, outcome: 'failed' }),
    },
  };
}
