import { Counter } from 'prom-client';
import { registry } from '../../core/metrics.js';

/**
 * Warehouse-specific metrics (the runtime already counts records, batches and latency per sink):
 * rows inserted versus rows skipped because their event — (event_id, event_ts) — was already
 * stored (a replay or a backfill re-sending events), per backend.
 */
let rows: Counter<'backend' | 'outcome'> | undefined;

export function warehouseRows(): Counter<'backend' | 'outcome'> {
  rows ??= new Counter({
    name: 'engage_warehouse_rows_total',
    help: 'Fact rows offered to the warehouse, by outcome: inserted, or duplicate (event_id and event_ts already stored)',
    labelNames: ['backend', 'outcome'],
    registers: [registry],
  });
  return rows;
}
