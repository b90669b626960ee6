import { Counter, Gauge, Histogram } from 'prom-client';
import { FRESHNESS_BUCKETS, registry } from '../core/metrics.js';

/**
 * The CDC's Prometheus metrics, registered once per process on the shared registry (several CDC
 * instances in one process, as in tests, share them through the `slot` label).
 */
export interface CdcMetrics {
  rows: Counter<'slot' | 'table' | 'op'>;
  transactions: Counter<'slot'>;
  kafkaCommits: Counter<'slot'>;
  retainedWalBytes: Gauge<'slot'>;
  lagBytes: Gauge<'slot'>;
  lagMs: Gauge<'slot'>;
  freshnessSeconds: Histogram<'slot'>;
  reconnects: Counter<'slot'>;
  tableTruncates: Counter<'slot' | 'table'>;
  truncated: Counter<'slot' | 'table'>;
  snapshotChunks: Counter<'slot'>;
  snapshotRowsPerSecond: Gauge<'slot'>;
  snapshotEtaSeconds: Gauge<'slot'>;
  snapshotRemainingRows: Gauge<'slot'>;
}

let metrics: CdcMetrics | undefined;

export function cdcMetrics(): CdcMetrics {
  metrics ??= {
    rows: new Counter({
      name: 'engage_cdc_rows_total',
      help: 'Row changes written to Kafka (committed), by table and op (c, u, d, r)',
      labelNames: ['slot', 'table', 'op'],
      registers: [registry],
    }),
    transactions: new Counter({
      name: 'engage_cdc_transactions_total',
      help: 'PostgreSQL transactions whose changes were committed to Kafka',
      labelNames: ['slot'],
      registers: [registry],
    }),
    kafkaCommits: new Counter({
      name: 'engage_cdc_kafka_commits_total',
      help: 'Kafka transactions committed by the CDC',
      labelNames: ['slot'],
      registers: [registry],
    }),
    retainedWalBytes: new Gauge({
      name: 'engage_cdc_slot_retained_wal_bytes',
      help: 'WAL the replication slot keeps on the server (current WAL LSN - restart_lsn)',
      labelNames: ['slot'],
      registers: [registry],
    }),
    lagBytes: new Gauge({
      name: 'engage_cdc_replication_lag_bytes',
      help: 'WAL written but not yet confirmed by the CDC (current WAL LSN - confirmed_flush_lsn)',
      labelNames: ['slot'],
      registers: [registry],
    }),
    lagMs: new Gauge({
      name: 'engage_cdc_replication_lag_ms',
      help: 'Kafka commit time minus PostgreSQL commit time of the last transaction committed',
      labelNames: ['slot'],
      registers: [registry],
    }),
    freshnessSeconds: new Histogram({
      name: 'engage_cdc_freshness_seconds',
      help: "PostgreSQL commit to Kafka commit, per source transaction (the CDC's hop; commit_ts vs this host's clock)",
      labelNames: ['slot'],
      buckets: FRESHNESS_BUCKETS,
      registers: [registry],
    }),
    reconnects: new Counter({
      name: 'engage_cdc_reconnects_total',
      help: 'Sessions restarted after a failure (PostgreSQL or Kafka)',
      labelNames: ['slot'],
      registers: [registry],
    }),
    tableTruncates: new Counter({
      name: 'engage_cdc_table_truncates_total',
      help: 'TRUNCATEs of a captured table seen in the WAL (not propagated: ids may be reused after RESTART IDENTITY)',
      labelNames: ['slot', 'table'],
      registers: [registry],
    }),
    truncated: new Counter({
      name: 'engage_cdc_truncated_events_total',
      help: 'Change events written with oversized values replaced by a marker (KAFKA_MESSAGE_MAX_BYTES), by table',
      labelNames: ['slot', 'table'],
      registers: [registry],
    }),
    snapshotChunks: new Counter({
      name: 'engage_cdc_snapshot_chunks_total',
      help: 'Incremental-snapshot chunks emitted (their rows count in engage_cdc_rows_total{op="r"} once committed)',
      labelNames: ['slot'],
      registers: [registry],
    }),
    snapshotRowsPerSecond: new Gauge({
      name: 'engage_cdc_snapshot_rows_per_second',
      help: "The running incremental snapshot's rate over its current table (0: none runs)",
      labelNames: ['slot'],
      registers: [registry],
    }),
    snapshotEtaSeconds: new Gauge({
      name: 'engage_cdc_snapshot_eta_seconds',
      help: "Seconds the running incremental snapshot's current table still needs at its rate (from PostgreSQL's row estimate; 0: none runs)",
      labelNames: ['slot'],
      registers: [registry],
    }),
    snapshotRemainingRows: new Gauge({
      name: 'engage_cdc_snapshot_remaining_rows',
      help: "Rows of the current table the incremental snapshot has still to read (PostgreSQL's estimate)",
      labelNames: ['slot'],
      registers: [registry],
    }),
  };
  return metrics;
}
