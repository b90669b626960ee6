import { Counter, Gauge, Histogram } from 'prom-client';
import { FRESHNESS_BUCKETS, LATENCY_BUCKETS, registry } from '../core/metrics.js';

/**
 * The stream processor's Prometheus metrics, registered once per process on the shared registry
 * (several processors in one process, as in tests, share the definitions). Output counters move
 * only when the Kafka transaction holding the records has committed.
 */
export interface ProcessorMetrics {
  recordsIn: Counter;
  recordsOut: Counter;
  dlq: Counter<'reason'>;
  skipped: Counter<'reason'>;
  flags: Counter<'flag'>;
  transactions: Counter<'result'>;
  batchSeconds: Histogram;
  transactionSeconds: Histogram;
  contentWaitSeconds: Histogram<'outcome'>;
  freshnessSeconds: Histogram;
  contentTableSize: Gauge;
  contentInvalid: Counter;
  consumerLag: Gauge<'partition'>;
  inFlight: Gauge;
}

let metrics: ProcessorMetrics | undefined;

export function processorMetrics(): ProcessorMetrics {
  const registers = [registry];
  metrics ??= {
    recordsIn: new Counter({
      name: 'engage_processor_records_in_total',
      help: 'Change events consumed from the engagement-events topic',
      registers,
    }),
    recordsOut: new Counter({
      name: 'engage_processor_records_out_total',
      help: 'Enriched records committed to the enriched topic',
      registers,
    }),
    dlq: new Counter({
      name: 'engage_processor_dlq_total',
      help: 'Records committed to the DLQ, by reason',
      labelNames: ['reason'],
      registers,
    }),
    skipped: new Counter({
      name: 'engage_processor_skipped_total',
      help: 'Records consumed and deliberately not forwarded (tombstones), by reason',
      labelNames: ['reason'],
      registers,
    }),
    flags: new Counter({
      name: 'engage_processor_quality_flags_total',
      help: 'Quality flags set on committed enriched records, by flag',
      labelNames: ['flag'],
      registers,
    }),
    transactions: new Counter({
      name: 'engage_processor_transactions_total',
      help: 'Kafka transactions, by result (committed, aborted)',
      labelNames: ['result'],
      registers,
    }),
    batchSeconds: new Histogram({
      name: 'engage_processor_batch_duration_seconds',
      help: 'One batch from hand-over by the consumer to its transaction committed',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    transactionSeconds: new Histogram({
      name: 'engage_processor_transaction_duration_seconds',
      help: 'One Kafka transaction: begin, send, offsets, commit',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    contentWaitSeconds: new Histogram({
      name: 'engage_processor_content_wait_seconds',
      help: 'Time a batch waited for unknown content ids (outcome found or unknown)',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    freshnessSeconds: new Histogram({
      name: 'engage_processor_freshness_seconds',
      help: 'Source commit (source_ts_ms) to enriched record committed',
      buckets: FRESHNESS_BUCKETS,
      registers,
    }),
    contentTableSize: new Gauge({
      name: 'engage_processor_content_table_size',
      help: 'Content rows held by the materialised content table',
      registers,
    }),
    contentInvalid: new Counter({
      name: 'engage_processor_content_invalid_total',
      help: 'Malformed records of the content topic (logged and ignored)',
      registers,
    }),
    consumerLag: new Gauge({
      name: 'engage_processor_consumer_lag',
      help: 'Change events not yet processed, per assigned partition (high watermark - next offset; the transaction markers an idle partition ends on do not count)',
      labelNames: ['partition'],
      registers,
    }),
    inFlight: new Gauge({
      name: 'engage_processor_in_flight_records',
      help: 'Records handed over by the consumer and not yet committed or released',
      registers,
    }),
  };
  return metrics;
}
