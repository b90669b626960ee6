import { sinkStageOrder } from '../../sinks/registry.js';

/**
 * How /metrics recognises the pipeline's metrics without a list of names: by the project's
 * naming convention `engage_<stage>_<what>_<unit>` (src/core/metrics.ts) and a `sink` label where
 * several sinks share a name. Components may add or rename metrics; these patterns keep working as
 * long as the convention holds. Pure.
 */

/** Metrics of the API's own health checker and per-process defaults are not pipeline stages. */
const NOT_A_STAGE = /^engage_(process|health|api)_/;

/** Counters that count records flowing through a stage. */
const FLOW = /_(records|rows|events|messages)(_[a-z]+)?_total$/;
const NOT_FLOW = /dlq|retr|error|fail|skip|drop|batch|reject|invalid|replay/;

export type LagUnit = 'records' | 'ms' | 'seconds' | 'bytes';

/** The stage a sample belongs to: `sink-<name>` for a sink label, else the name's stage part. */
export function stageOf(name: string, labels: Record<string, string | number>): string {
  const sink = labels.sink;
  if (sink !== undefined && sink !== '') return `sink-${String(sink)}`;
  const stage = labels.stage;
  if (stage !== undefined && stage !== '') return String(stage).replace(/^sink:/, 'sink-');
  // A sink's own metrics without a sink label: engage_sink_<sink>_<what>.
  const own = /^engage_sink_([a-z0-9]+)_/.exec(name);
  if (own?.[1] && !/^(records|batch|batches|freshness|consumer|dlq|retries|retry|write|lag)$/.test(own[1]))
    return `sink-${own[1]}`;
  const m = /^engage_([a-z0-9]+)_/.exec(name);
  // A sink's own metrics named after it (engage_warehouse_rows_total in the sink-warehouse process).
  if (m?.[1] && labels.component === `sink-${m[1]}`) return `sink-${m[1]}`;
  if (m?.[1]) return m[1];
  return String(labels.component ?? 'unknown');
}

export function isPipelineMetric(name: string): boolean {
  return name.startsWith('engage_') && !NOT_A_STAGE.test(name);
}

/**
 * A counter of records through a stage, with a preference used when a stage has several:
 * 3 = leaving the stage (out/produced/written), 2 = undirected, 1 = entering it; 0 = not a flow.
 */
export function flowPreference(name: string, type: string): number {
  if (type !== 'counter' || !isPipelineMetric(name) || !FLOW.test(name) || NOT_FLOW.test(name)) return 0;
  if (/_(out|produced|written|delivered|sent|committed)_total$/.test(name)) return 3;
  if (/_(in|consumed|received|read)_total$/.test(name)) return 1;
  return 2;
}

export function isLag(name: string, type: string): boolean {
  return type === 'gauge' && isPipelineMetric(name) && /lag|retained_wal/.test(name);
}

export function lagUnit(name: string): LagUnit {
  if (/_ms$/.test(name)) return 'ms';
  if (/_seconds$/.test(name)) return 'seconds';
  if (/_bytes$/.test(name)) return 'bytes';
  return 'records';
}

export function isFreshness(name: string, type: string): boolean {
  return type === 'histogram' && isPipelineMetric(name) && /freshness/.test(name);
}

export function isDlq(name: string, type: string): boolean {
  return type === 'counter' && isPipelineMetric(name) && /dlq/.test(name) && !/replay/.test(name);
}

/** Source to sinks: the sink stages in their registry order (src/sinks/registry.ts). */
const STAGE_ORDER = ['generator', 'cdc', 'processor', ...sinkStageOrder(), 'external'];

/** Pipeline order first (source to sinks), then the rest alphabetically. */
export function compareStages(a: string, b: string): number {
  const ia = STAGE_ORDER.indexOf(a);
  const ib = STAGE_ORDER.indexOf(b);
  if (ia >= 0 && ib >= 0) return ia - ib;
  if (ia >= 0) return -1;
  if (ib >= 0) return 1;
  return a.localeCompare(b);
}
