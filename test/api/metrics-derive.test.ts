import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FRESHNESS_BUCKETS } from '../../src/core/metrics.js';
import type { PromMetric } from '../../src/api/heartbeats.js';
import { flowPreference, stageOf } from '../../src/api/metrics/classify.js';
import { SeriesHistory } from '../../src/api/metrics/history.js';
import { mergedRegistry, mergeFamilies } from '../../src/api/metrics/merge.js';
import { histogramQuantile } from '../../src/api/metrics/quantile.js';
import { MetricsSummarizer } from '../../src/api/metrics/summary.js';

/** The pure parts of /metrics: quantiles from buckets, rates from history, merging, the summary. */

describe('histogramQuantile', () => {
  it('interpolates inside the bucket holding the rank, like PromQL', () => {
    const buckets = [
      { le: 0.1, count: 50 },
      { le: 0.5, count: 90 },
      { le: 1, count: 100 },
      { le: Infinity, count: 100 },
    ];
    assert.equal(histogramQuantile(0.5, buckets), 0.1);
    assert.ok(Math.abs((histogramQuantile(0.7, buckets) ?? 0) - 0.3) < 1e-9);
    assert.ok(Math.abs((histogramQuantile(0.95, buckets) ?? 0) - 0.75) < 1e-9);
    assert.equal(histogramQuantile(0.25, buckets), 0.05);
  });

  it('answers the highest finite bound for ranks in +Inf and null when empty', () => {
    assert.equal(
      histogramQuantile(0.99, [
        { le: 1, count: 1 },
        { le: Infinity, count: 10 },
      ]),
      1,
    );
    assert.equal(
      histogramQuantile(0.5, [
        { le: 1, count: 0 },
        { le: Infinity, count: 0 },
      ]),
      null,
    );
    assert.equal(histogramQuantile(0.5, []), null);
  });
});

describe('SeriesHistory', () => {
  it('derives growth per second over the window and counts a reset from zero', () => {
    const h = new SeriesHistory(10_000);
    h.add('a', 1000, 10);
    assert.equal(h.increase('a'), null);
    h.add('a', 3000, 30);
    assert.deepEqual(h.increase('a'), { increase: 20, seconds: 2 });
    h.add('a', 3000, 99); // same time: ignored
    h.add('a', 3400, 99); // closer than 500 ms to the last sample: ignored
    assert.deepEqual(h.increase('a'), { increase: 20, seconds: 2 });
    h.add('a', 5000, 5); // restart: counts 5
    assert.deepEqual(h.increase('a'), { increase: 25, seconds: 4 });
    h.add('a', 20_000, 15);
    // Samples older than the window are dropped but one stays as the base.
    const inc = h.increase('a');
    assert.equal(inc?.seconds, 15);
    assert.equal(inc?.increase, 10);
    h.forgetStale(100_000);
    assert.equal(h.size, 0);
  });
});

describe('classify', () => {
  it('names the stage from the sink label, else from the metric name', () => {
    assert.equal(stageOf('engage_sink_records_out_total', { sink: 'redis' }), 'sink-redis');
    assert.equal(stageOf('engage_cdc_rows_total', { table: 'x' }), 'cdc');
    assert.equal(stageOf('engage_sink_external_events_total', {}), 'sink-external');
    assert.equal(stageOf('engage_processor_dlq_total', { stage: 'sink:redis' }), 'sink-redis');
    assert.equal(stageOf('engage_warehouse_rows_total', { component: 'sink-warehouse' }), 'sink-warehouse');
    assert.equal(stageOf('engage_warehouse_rows_total', {}), 'warehouse');
  });

  it('prefers records leaving a stage and ignores DLQ, retries and process metrics', () => {
    assert.equal(flowPreference('engage_sink_records_out_total', 'counter'), 3);
    assert.equal(flowPreference('engage_sink_records_in_total', 'counter'), 1);
    assert.equal(flowPreference('engage_cdc_rows_total', 'counter'), 2);
    assert.equal(flowPreference('engage_sink_dlq_total', 'counter'), 0);
    assert.equal(flowPreference('engage_sink_records_out_total', 'gauge'), 0);
    assert.equal(flowPreference('engage_process_cpu_seconds_total', 'counter'), 0);
  });
});

/** A registry shaped like one sink process's. */
function sinkRegistry(sink: string) {
  const registry = new Registry();
  const registers = [registry];
  const labelNames = ['sink'] as const;
  return {
    registry,
    out: new Counter({ name: 'engage_sink_records_out_total', help: 'out', labelNames, registers }).labels({ sink }),
    dlq: new Counter({ name: 'engage_sink_dlq_total', help: 'dlq', labelNames, registers }).labels({ sink }),
    lag: new Gauge({ name: 'engage_sink_consumer_lag', help: 'lag', labelNames, registers }).labels({ sink }),
    fresh: new Histogram({
      name: 'engage_sink_freshness_seconds',
      help: 'fresh',
      labelNames,
      buckets: FRESHNESS_BUCKETS,
      registers,
    }).labels({ sink }),
  };
}

const json = async (r: Registry) => (await r.getMetricsAsJSON()) as unknown as PromMetric[];

describe('merge', () => {
  it('keeps every process apart with instance_id instead of summing gauges', async () => {
    const a = sinkRegistry('redis');
    const b = sinkRegistry('redis');
    a.lag.set(7);
    b.lag.set(5);
    const families = mergeFamilies([
      { component: 'sink-redis', instance: 'h-1', atMs: 0, metrics: await json(a.registry) },
      { component: 'sink-redis', instance: 'h-2', atMs: 0, metrics: await json(b.registry) },
    ]);
    const lag = families.find((f) => f.name === 'engage_sink_consumer_lag');
    assert.deepEqual(
      lag?.values.map((v) => [v.labels.instance_id, v.labels.component, v.value]),
      [
        ['h-1', 'sink-redis', 7],
        ['h-2', 'sink-redis', 5],
      ],
    );
    const text = await mergedRegistry([
      { component: 'sink-redis', instance: 'h-1', atMs: 0, metrics: await json(a.registry) },
      { component: 'sink-redis', instance: 'h-2', atMs: 0, metrics: await json(b.registry) },
    ]).metrics();
    assert.match(text, /^engage_sink_consumer_lag\{component="sink-redis",sink="redis",instance_id="h-1"\} 7$/m);
    assert.match(text, /^engage_sink_consumer_lag\{component="sink-redis",sink="redis",instance_id="h-2"\} 5$/m);
    assert.equal(text.match(/# TYPE engage_sink_consumer_lag gauge/g)?.length, 1);
  });
});

describe('MetricsSummarizer', () => {
  it('derives rates, lags, windowed freshness percentiles and DLQ counts from two heartbeat rounds', async () => {
    const a = sinkRegistry('redis');
    const b = sinkRegistry('warehouse');
    const s = new MetricsSummarizer();
    const t0 = 1_700_000_000_000;
    const round = async (t: number) => [
      { component: 'sink-redis', instance: 'r1', atMs: t, metrics: await json(a.registry) },
      { component: 'sink-warehouse', instance: 'w1', atMs: t, metrics: await json(b.registry) },
    ];
    a.out.inc(100);
    a.fresh.observe(30); // an old observation: must not weigh on the windowed percentiles
    b.out.inc(10);
    const first = s.summarize(await round(t0), [], t0, 1);
    assert.deepEqual(
      first.throughput.map((x) => [x.stage, x.total, x.per_second]),
      [
        ['sink-redis', 100, null],
        ['sink-warehouse', 10, null],
      ],
    );
    assert.equal(first.freshness.find((f) => f.stage === 'sink-redis')?.basis, 'cumulative');

    a.out.inc(400);
    b.out.inc(40);
    for (let i = 0; i < 90; i += 1) a.fresh.observe(0.2);
    for (let i = 0; i < 10; i += 1) a.fresh.observe(3);
    a.lag.set(12);
    b.lag.set(3);
    a.dlq.inc(2);
    const second = s.summarize(
      await round(t0 + 2000),
      [{ component: 'sink-redis', instance: 'r1', startedAtMs: t0 - 10_000, sentAtMs: t0 + 1000 }],
      t0 + 2000,
      5,
    );
    assert.deepEqual(
      second.throughput.map((x) => [x.stage, x.total, x.per_second]),
      [
        ['sink-redis', 500, 200],
        ['sink-warehouse', 50, 20],
      ],
    );
    assert.deepEqual(
      second.lags.map((l) => [l.stage, l.metric, l.unit, l.value]),
      [
        ['sink-redis', 'engage_sink_consumer_lag', 'records', 12],
        ['sink-warehouse', 'engage_sink_consumer_lag', 'records', 3],
      ],
    );
    const fr = second.freshness.find((f) => f.stage === 'sink-redis');
    assert.equal(fr?.basis, 'window');
    assert.equal(fr?.count, 100);
    assert.equal(fr?.target_seconds, 5, "Redis's freshness promise");
    assert.ok(fr?.p50 !== null && fr?.p50 !== undefined && fr.p50 > 0.1 && fr.p50 <= 0.25, `p50 ${fr?.p50}`);
    assert.ok(fr?.p99 !== null && fr?.p99 !== undefined && fr.p99 > 2 && fr.p99 <= 5, `p99 ${fr?.p99}`);
    assert.equal(second.dlq_total, 2);
    assert.deepEqual(
      second.dlq.find((d) => d.stage === 'sink-redis'),
      { stage: 'sink-redis', metric: 'engage_sink_dlq_total', total: 2, per_second: 1 },
    );
    assert.deepEqual(second.components, [
      { component: 'sink-redis', instance: 'r1', uptime_seconds: 12, heartbeat_age_seconds: 1 },
    ]);
    assert.equal(second.uptime_seconds, 5);
  });
});
