import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Registry } from 'prom-client';
import type { PromMetric } from '../../src/api/heartbeats.js';
import { MetricsSummarizer, type MetricsSummary } from '../../src/api/metrics/summary.js';
import {
  observations,
  RETENTION_MS,
  STEP_MS,
  TrendHistory,
  type TrendObservation,
} from '../../src/api/metrics/trends.js';

/**
 * The trend history behind GET /metrics/history (pure): one point per step per series
 * (throughput averaged, lags and freshness at their worst), 15 minutes kept, a bounded number of
 * series; what a summary contributes; and a rate from the first heartbeat of a process that just
 * started.
 */

const T0 = 1_700_000_000_000; // a multiple of STEP_MS

function rate(stage: string, value: number): TrendObservation {
  return {
    kind: 'throughput',
    stage,
    metric: 'engage_x_records_out_total',
    stat: 'per_second',
    unit: 'records/s',
    value,
  };
}

function lag(stage: string, value: number): TrendObservation {
  return { kind: 'lag', stage, metric: 'engage_x_consumer_lag', stat: 'value', unit: 'records', value };
}

function summary(parts: Partial<MetricsSummary>): MetricsSummary {
  return {
    generated_at: new Date(T0).toISOString(),
    uptime_seconds: 1,
    rate_window_seconds: 10,
    components: [],
    throughput: [],
    lags: [],
    freshness: [],
    dlq: [],
    dlq_total: 0,
    ...parts,
  };
}

describe('TrendHistory', () => {
  it('downsamples to one point per step: the mean of the rates, the worst lag', () => {
    assert.equal(T0 % STEP_MS, 0);
    const h = new TrendHistory();
    h.observe(rate('cdc', 10), T0 + 100);
    h.observe(rate('cdc', 30), T0 + 2600);
    h.observe(lag('cdc', 7), T0 + 100);
    h.observe(lag('cdc', 3), T0 + 4900);
    h.observe(rate('cdc', 50), T0 + STEP_MS); // the next step
    h.observe(rate('cdc', 99), T0 - 1); // older than the last step: dropped
    const [throughput, lags] = h.read(T0 + STEP_MS);
    assert.deepEqual(throughput?.points, [
      { t: T0, v: 20 },
      { t: T0 + STEP_MS, v: 50 },
    ]);
    assert.deepEqual(lags?.points, [{ t: T0, v: 7 }]);
    assert.equal(h.pointCount, 3);
  });

  it('keeps 15 minutes: recording every second for an hour holds one step-point per series per step', () => {
    const h = new TrendHistory();
    const perSeries = RETENTION_MS / STEP_MS + 1;
    for (let s = 0; s < 3600; s += 1) {
      const now = T0 + s * 1000;
      h.record(
        summary({
          throughput: [{ stage: 'processor', metric: 'engage_processor_records_out_total', total: s, per_second: s }],
          lags: [{ stage: 'processor', metric: 'engage_processor_consumer_lag', unit: 'records', value: s % 7 }],
        }),
        now,
      );
      assert.ok(h.pointCount <= 2 * perSeries, `bounded at ${s} s: ${h.pointCount}`);
    }
    const end = T0 + 3599_000;
    const [throughput] = h.read(end);
    const points = throughput?.points ?? [];
    // The step holding `end - RETENTION_MS` started before it, so it is gone: 180 steps remain.
    assert.equal(points.length, RETENTION_MS / STEP_MS);
    assert.ok((points[0]?.t ?? 0) >= end - RETENTION_MS - STEP_MS, 'nothing older than the retention');
    assert.ok(
      points.every((p, i) => i === 0 || p.t - (points[i - 1]?.t ?? 0) === STEP_MS),
      'one point per step',
    );
    // The last step holds seconds 3595..3599: their mean.
    assert.deepEqual(points[points.length - 1], { t: T0 + 3595_000, v: 3597 });
    // A shorter window reads fewer points; a stage that stops reporting ages out entirely.
    assert.equal(h.read(end, 60_000)[0]?.points.length, 60_000 / STEP_MS + 1);
    h.prune(end + RETENTION_MS + STEP_MS);
    assert.equal(h.seriesCount, 0);
  });

  it('bounds the number of series, dropping the ones updated longest ago', () => {
    const h = new TrendHistory(STEP_MS, RETENTION_MS, 3);
    for (let i = 0; i < 5; i += 1) h.observe(rate(`stage-${i}`, i), T0 + i * 1000);
    h.prune(T0 + 5000);
    assert.deepEqual(
      h.read(T0 + 5000).map((s) => s.stage),
      ['stage-2', 'stage-3', 'stage-4'],
    );
  });

  it('reads in pipeline order: throughput, lags, freshness, each source to sinks', () => {
    const h = new TrendHistory();
    h.observe({ ...lag('sink-redis', 1) }, T0);
    h.observe(rate('sink-redis', 1), T0);
    h.observe(rate('cdc', 1), T0);
    h.observe({ ...lag('processor', 1) }, T0);
    assert.deepEqual(
      h.read(T0).map((s) => `${s.kind}:${s.stage}`),
      ['throughput:cdc', 'throughput:sink-redis', 'lag:processor', 'lag:sink-redis'],
    );
  });
});

describe('observations', () => {
  it('takes rates once known, every lag with time in seconds, and windowed freshness in seconds', () => {
    const obs = observations(
      summary({
        throughput: [
          { stage: 'cdc', metric: 'engage_cdc_rows_total', total: 5, per_second: null },
          { stage: 'processor', metric: 'engage_processor_records_out_total', total: 5, per_second: 2.5 },
        ],
        lags: [
          { stage: 'cdc', metric: 'engage_cdc_replication_lag_ms', unit: 'ms', value: 250 },
          { stage: 'cdc', metric: 'engage_cdc_slot_retained_wal_bytes', unit: 'bytes', value: 4096 },
        ],
        freshness: [
          {
            stage: 'sink-redis',
            metric: 'm_ms',
            basis: 'window',
            count: 3,
            p50: 40,
            p95: 80,
            p99: 90,
            unit: 'ms',
            target_seconds: 5,
          },
          {
            stage: 'sink-warehouse',
            metric: 'm',
            basis: 'cumulative',
            count: 3,
            p50: 1,
            p95: 2,
            p99: 3,
            unit: 'seconds',
            target_seconds: 45,
          },
        ],
      }),
    );
    assert.deepEqual(
      obs.map((o) => [o.kind, o.stage, o.stat, o.unit, o.value]),
      [
        ['throughput', 'processor', 'per_second', 'records/s', 2.5],
        ['lag', 'cdc', 'value', 'seconds', 0.25],
        ['lag', 'cdc', 'value', 'bytes', 4096],
        ['freshness', 'sink-redis', 'p50', 'seconds', 0.04],
        ['freshness', 'sink-redis', 'p99', 'seconds', 0.09],
      ],
    );
  });
});

describe('MetricsSummarizer rates on the first heartbeat', () => {
  async function source(instance: string, total: number, atMs: number) {
    const registry = new Registry();
    new Counter({ name: 'engage_processor_records_out_total', help: 'out', registers: [registry] }).inc(total);
    const metrics = (await registry.getMetricsAsJSON()) as unknown as PromMetric[];
    return { component: 'processor', instance, atMs, metrics };
  }

  it('counts from the start of a process that started within the rate window, not of an older one', async () => {
    const s = new MetricsSummarizer();
    const young = s.summarize(
      [await source('p-young', 400, T0)],
      [{ component: 'processor', instance: 'p-young', startedAtMs: T0 - 4000, sentAtMs: T0 }],
      T0,
      1,
    );
    assert.equal(young.throughput[0]?.per_second, 100);
    const old = new MetricsSummarizer().summarize(
      [await source('p-old', 400, T0)],
      [{ component: 'processor', instance: 'p-old', startedAtMs: T0 - 60_000, sentAtMs: T0 }],
      T0,
      1,
    );
    assert.equal(old.throughput[0]?.per_second, null);
  });
});
