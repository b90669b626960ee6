import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freshnessAlertRules, replaceGeneratedBlock } from '../../src/api/metrics/freshness-alert.js';
import { FRESHNESS_TARGET_SECONDS } from '../../src/api/metrics/freshness-targets.js';
import { cdcMetrics } from '../../src/cdc/metrics.js';
import { enableDefaultMetrics, registry } from '../../src/core/metrics.js';
import { processorMetrics } from '../../src/processor/metrics.js';
import { sinkMetrics } from '../../src/runtime/sink-metrics.js';
import { externalMetrics } from '../../src/sinks/external/metrics.js';
import { redisSinkMetrics } from '../../src/sinks/redis/metrics.js';
import { registeredSinks } from '../../src/sinks/registry.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { startTestApi, type TestApi } from './fixtures.js';

/**
 * The operator files: deploy/prometheus/alerts.yml and prometheus.yml pass promtool (rules, config
 * and the rule unit tests in alerts.promtest.yml), deploy/grafana/dashboard.json is importable with a
 * Prometheus datasource variable and valid PromQL, and every metric either file uses exists in the
 * API's /metrics/prometheus once the components' own metric registration has run.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PROMTOOL = '/usr/bin/promtool';
const ALERTS = path.join(root, 'deploy', 'prometheus', 'alerts.yml');
const SCRAPE = path.join(root, 'deploy', 'prometheus', 'prometheus.yml');
const DASHBOARD = path.join(root, 'deploy', 'grafana', 'dashboard.json');
const NO_PROMTOOL = `promtool not installed (${PROMTOOL}); \`npm test\` installs Debian's prometheus package through scripts/ensure-deps.mjs`;

interface Target {
  expr: string;
  datasource?: { uid?: string; type?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid?: string; type?: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
}
interface Dashboard {
  __inputs: Array<{ name: string; type: string; pluginId: string }>;
  templating: { list: Array<{ name: string; type: string; query: unknown; current?: { value?: unknown } }> };
  panels: Panel[];
  uid: string;
  title: string;
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const dashboardExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
const alertExprs = [...readFileSync(ALERTS, 'utf8').matchAll(/^\s+expr:\s*(.+)$/gm)].map((m) =>
  (m[1] as string).trim(),
);

/** Metric names in PromQL: identifiers that are not functions, keywords, labels or durations. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""');
  const withoutLabels = withoutStrings
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...withoutLabels.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)]
    .map((m) => m[1] as string)
    .filter(
      (n) =>
        !['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'e'].includes(n) &&
        !/^\d/.test(n) &&
        !/^(__rate_interval|sink)$/.test(n),
    );
}

function promtool(args: string[], input?: string): { status: number | null; out: string } {
  const res = spawnSync(PROMTOOL, args, {
    cwd: root,
    encoding: 'utf8',
    timeout: 30_000,
    ...(input === undefined ? {} : { input }),
  });
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

let env: TestEnv;
let api: TestApi;

before(async () => {
  // The components' own registration code, as each component process runs it at start.
  enableDefaultMetrics('test');
  cdcMetrics();
  processorMetrics();
  for (const sink of registeredSinks()) sinkMetrics(sink.name);
  externalMetrics();
  redisSinkMetrics();
  env = await createTestEnv();
  api = await startTestApi(env.config, registry);
});

after(async () => {
  await api.close();
  await env.cleanup();
});

describe('deploy/prometheus', () => {
  it('alerts.yml passes promtool check rules', (t) => {
    if (!existsSync(PROMTOOL)) return t.skip(NO_PROMTOOL);
    const { status, out } = promtool(['check', 'rules', ALERTS]);
    assert.equal(status, 0, out);
    assert.match(out, /SUCCESS: \d+ rules found/);
  });

  it('prometheus.yml passes promtool check config (with its rule file)', (t) => {
    if (!existsSync(PROMTOOL)) return t.skip(NO_PROMTOOL);
    const { status, out } = promtool(['check', 'config', SCRAPE]);
    assert.equal(status, 0, out);
  });

  it('the alerts fire on the series that should raise them, and only those (promtool test rules)', (t) => {
    if (!existsSync(PROMTOOL)) return t.skip(NO_PROMTOOL);
    const { status, out } = promtool(['test', 'rules', path.join('test', 'api', 'alerts.promtest.yml')]);
    assert.equal(status, 0, out);
    assert.match(out, /SUCCESS/);
  });

  it("covers slot WAL, consumer lag, DLQ growth, freshness above each sink's target and a component down", () => {
    const text = readFileSync(ALERTS, 'utf8');
    for (const name of [
      'EngageReplicationSlotWalRetained',
      'EngageSinkConsumerLagHigh',
      'EngageSinkDlqGrowing',
      'EngageFreshnessAboveTarget',
      'EngageComponentDown',
      'EngageApiDown',
    ]) {
      assert.match(text, new RegExp(`alert: ${name}\\b`), name);
    }
    // The freshness alert holds each sink to the promise the dashboard shows (freshness-targets.ts).
    const freshness = alertExprs.filter((e) => e.includes('engage_sink_freshness_seconds_bucket'));
    const thresholds = Object.fromEntries(
      freshness
        .flatMap((e) => [...e.matchAll(/\{sink="([a-z0-9]+)"\}\[5m\]\)\)\) > (\d+)/g)])
        .map((m) => [`sink-${m[1]}`, Number(m[2])]),
    );
    assert.deepEqual(thresholds, FRESHNESS_TARGET_SECONDS);
  });

  it('its freshness rules are the ones the sink registry generates (npx tsx scripts/generate-alerts.ts)', () => {
    const text = readFileSync(ALERTS, 'utf8');
    const block = freshnessAlertRules(
      registeredSinks().map((f) => ({ sink: f.name, seconds: f.operations.freshnessTargetSeconds })),
    );
    assert.equal(
      replaceGeneratedBlock(text, block),
      text,
      'deploy/prometheus/alerts.yml is out of date: run npx tsx scripts/generate-alerts.ts',
    );
  });
});

describe('deploy/grafana/dashboard.json', () => {
  it('is importable: a Prometheus datasource input and variable used by every panel', () => {
    assert.equal(dashboard.uid, 'engage-pipeline');
    assert.deepEqual(
      dashboard.__inputs.map((i) => [i.name, i.type, i.pluginId]),
      [['DS_PROMETHEUS', 'datasource', 'prometheus']],
    );
    const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
    assert.equal(ds?.name, 'datasource');
    assert.equal(ds?.query, 'prometheus');
    assert.equal(ds?.current?.value, '${DS_PROMETHEUS}');
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    assert.ok(panels.length >= 10);
    assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'unique panel ids');
    for (const p of panels) {
      assert.equal(p.datasource?.uid, '${datasource}', p.title);
      assert.ok((p.targets ?? []).length > 0, `${p.title} has queries`);
      for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, '${datasource}', p.title);
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
    }
    const titles = panels.map((p) => p.title).join(' | ');
    for (const what of ['Throughput', 'freshness', 'Consumer lag', 'Dead-letter', 'WAL retained'])
      assert.ok(titles.includes(what), `${what} in ${titles}`);
  });

  it('has valid PromQL in every panel (checked by promtool as recording rules)', (t) => {
    if (!existsSync(PROMTOOL)) return t.skip(NO_PROMTOOL);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'engage-grafana-'));
    try {
      const rules = dashboardExprs
        .map(
          (e, i) =>
            `      - record: grafana_panel_expr_${i}\n        expr: ${JSON.stringify(e.replaceAll('$__rate_interval', '1m').replaceAll('$sink', '.*'))}`,
        )
        .join('\n');
      const file = path.join(dir, 'dashboard-exprs.yml');
      writeFileSync(file, `groups:\n  - name: grafana\n    rules:\n${rules}\n`);
      const { status, out } = promtool(['check', 'rules', file]);
      assert.equal(status, 0, out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('metrics used by deploy/ exist in /metrics/prometheus', () => {
  it('finds every metric of the alerts and the dashboard (histograms by their family)', async () => {
    const res = await api.app.inject({ url: '/metrics/prometheus' });
    assert.equal(res.statusCode, 200);
    const types = new Map(
      [...res.body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]),
    );
    const used = new Set([...alertExprs, ...dashboardExprs].flatMap(metricNames));
    used.delete('up'); // produced by Prometheus itself for every scrape target
    assert.ok(used.size >= 20, `found ${used.size} metric names: ${[...used].join(', ')}`);
    const missing = [...used].filter((name) => {
      if (types.has(name)) return false;
      const family = name.replace(/_(bucket|sum|count)$/, '');
      return types.get(family) !== 'histogram';
    });
    assert.deepEqual(missing, [], `metrics used by deploy/ but absent from /metrics/prometheus: ${missing.join(', ')}`);
  });

  it('the name extraction sees through functions, label matchers and aggregations', () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.99, sum by (sink, le) (rate(engage_sink_freshness_seconds_bucket{sink=~"$sink"}[5m]))) > 5',
      ),
      ['engage_sink_freshness_seconds_bucket'],
    );
    assert.deepEqual(
      metricNames(
        'max by (slot) (engage_health_slot_retained_wal_bytes or engage_cdc_slot_retained_wal_bytes) > 1073741824',
      ),
      ['engage_health_slot_retained_wal_bytes', 'engage_cdc_slot_retained_wal_bytes'],
    );
    assert.deepEqual(metricNames('up{job="engage-pipeline"} == 0'), ['up']);
  });
});
