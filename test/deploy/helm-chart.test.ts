/**
 * The Helm chart (deploy/helm/engagement-pipeline): `helm lint` and `helm template` with the
 * default values and three variants (test/deploy/values/), every rendered manifest validated
 * against the Kubernetes, KEDA and Prometheus Operator schemas, and the chart held to the code:
 * its sinks are the registry's, its consumer groups and topics the ones the stages use, its settings
 * names the config schema knows, probes on HEALTH_PORT, replicas never beyond the partitions.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { envSchema } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/load.js';
import { processorGroupId } from '../../src/processor/processor.js';
import { sinkGroupId } from '../../src/runtime/sink-runner-options.js';
import { sinkNames } from '../../src/sinks/registry.js';
import { CHART, helm, render, validateManifest, type Manifest } from './k8s-tools.js';

const VARIANTS: Record<string, string[]> = {
  default: [],
  bigquery: [path.join(import.meta.dirname, 'values', 'bigquery.yaml')],
  'managed-kafka': [path.join(import.meta.dirname, 'values', 'managed-kafka.yaml')],
  'no-keda': [path.join(import.meta.dirname, 'values', 'no-keda.yaml')],
};
const rendered = Object.fromEntries(Object.entries(VARIANTS).map(([name, files]) => [name, render(files)]));

type Obj = Record<string, unknown>;
const of = (ms: Manifest[], kind: string) => ms.filter((m) => m.kind === kind);
const named = (ms: Manifest[], kind: string, suffix: string) =>
  ms.find((m) => m.kind === kind && m.metadata.name === `test-engagement-pipeline-${suffix}`);
const podSpec = (d: Manifest) => ((d.spec?.template as Obj).spec as Obj) ?? {};
const container = (d: Manifest) => (podSpec(d).containers as Obj[])[0] as Obj;

test('helm lint passes with the default values and every variant', () => {
  for (const [name, files] of Object.entries(VARIANTS)) {
    const res = helm(['lint', CHART, ...files.flatMap((f) => ['-f', f])]);
    assert.equal(res.code, 0, `${name}: ${res.stdout}${res.stderr}`);
  }
});

test('every rendered manifest validates against its schema (Kubernetes, KEDA, Prometheus Operator)', async () => {
  for (const [name, manifests] of Object.entries(rendered)) {
    assert.ok(manifests.length > 10, `${name}: rendered ${manifests.length} manifests`);
    for (const m of manifests) await validateManifest(m);
  }
});

test('the validation rejects a broken manifest and a kind it has no schema for', async () => {
  const deployment = structuredClone(named(rendered.default!, 'Deployment', 'processor')) as Manifest;
  (deployment.spec as Obj).replicas = 'two';
  await assert.rejects(validateManifest(deployment), /replicas/);
  const scaled = structuredClone(of(rendered.default!, 'ScaledObject')[0]) as Manifest;
  (scaled.spec as Obj).scaleTargetRef = {};
  await assert.rejects(validateManifest(scaled), /name/);
  await assert.rejects(
    validateManifest({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }),
    /no schema/,
  );
});

test("the chart's sinks are the registry's, and its dashboard is deploy/grafana/dashboard.json", () => {
  const values = helm(['show', 'values', CHART]).stdout;
  const names = [...values.matchAll(/^ {2}- name: (\S+)$/gm)].map((m) => m[1]).sort();
  assert.deepEqual(names, sinkNames());
  const copy = readFileSync(path.join(CHART, 'files', 'dashboard.json'), 'utf8');
  const source = readFileSync(path.join(CHART, '..', '..', 'grafana', 'dashboard.json'), 'utf8');
  assert.equal(
    copy,
    source,
    'copy deploy/grafana/dashboard.json to the chart: cp deploy/grafana/dashboard.json deploy/helm/engagement-pipeline/files/',
  );
});

test('stages: the CDC one Recreate replica; DuckDB one Recreate replica on its claim; probes on HEALTH_PORT', () => {
  const ms = rendered.default!;
  const settings = named(ms, 'ConfigMap', 'settings')!.data!;
  const cdc = named(ms, 'Deployment', 'cdc')!;
  assert.deepEqual([cdc.spec?.replicas, (cdc.spec?.strategy as Obj).type], [1, 'Recreate']);
  const wh = named(ms, 'Deployment', 'sink-warehouse')!;
  assert.deepEqual([wh.spec?.replicas, (wh.spec?.strategy as Obj).type], [1, 'Recreate']);
  assert.ok(named(ms, 'PersistentVolumeClaim', 'sink-warehouse'), 'the warehouse claim');
  assert.ok(!named(ms, 'ScaledObject', 'sink-warehouse'), 'DuckDB has one writer: never scaled');
  const stages = ['cdc', 'processor', 'sink-redis', 'sink-warehouse', 'sink-external'];
  assert.deepEqual(settings.API_EXPECTED_COMPONENTS, stages.join(','));
  for (const stage of stages) {
    const c = container(named(ms, 'Deployment', stage)!);
    const port = (c.ports as Obj[]).find((p) => p.name === 'health');
    assert.equal(String(port?.containerPort), settings.HEALTH_PORT, stage);
    assert.equal(((c.livenessProbe as Obj).httpGet as Obj).path, '/health/live', stage);
    assert.equal(((c.readinessProbe as Obj).httpGet as Obj).path, '/health/ready', stage);
    assert.ok(named(ms, 'PodDisruptionBudget', stage), `${stage}: a PodDisruptionBudget`);
  }
  assert.equal(settings.HEALTH_HOST, '0.0.0.0');
  const api = named(ms, 'Deployment', 'api')!;
  assert.equal(((container(api).readinessProbe as Obj).httpGet as Obj).path, '/health/ready');
  assert.ok(named(ms, 'Service', 'api'));
  assert.equal(of(ms, 'ServiceMonitor').length, 1);
});

test('KEDA: the processor and every scalable sink on their own group and topic, never beyond the partitions', () => {
  for (const [name, ms] of Object.entries(rendered)) {
    const settings = named(ms, 'ConfigMap', 'settings')!.data!;
    const config = loadConfig({ KAFKA_CLIENT_ID: settings.KAFKA_CLIENT_ID }, '/nonexistent');
    const partitions = Number(settings.KAFKA_TOPIC_PARTITIONS);
    for (const so of of(ms, 'ScaledObject')) {
      const spec = so.spec as Obj;
      const target = (spec.scaleTargetRef as Obj).name as string;
      assert.ok(named(ms, 'Deployment', target.replace('test-engagement-pipeline-', '')), `${name}: ${target}`);
      assert.ok(
        (spec.maxReplicaCount as number) <= partitions,
        `${name}: ${target} max ${String(spec.maxReplicaCount)}`,
      );
      const meta = ((spec.triggers as Obj[])[0] as Obj).metadata as Record<string, string>;
      const stage = target.replace('test-engagement-pipeline-', '');
      const group = stage === 'processor' ? processorGroupId(config) : sinkGroupId(config, stage.slice('sink-'.length));
      assert.equal(meta.consumerGroup, group, `${name}: ${stage}`);
      assert.equal(
        meta.topic,
        stage === 'processor' ? settings.KAFKA_TOPIC_ENGAGEMENT_EVENTS : settings.KAFKA_TOPIC_ENRICHED,
      );
      assert.equal(meta.bootstrapServers, settings.KAFKA_BOOTSTRAP_SERVERS);
      // A scaled Deployment leaves its replica count to KEDA.
      assert.equal(named(ms, 'Deployment', stage)?.spec?.replicas, undefined, `${name}: ${stage}`);
    }
  }
  const scaled = (v: string) =>
    of(rendered[v]!, 'ScaledObject').map((s) => s.metadata.name.replace('test-engagement-pipeline-', ''));
  assert.deepEqual(scaled('default'), ['processor', 'sink-redis', 'sink-external']);
  assert.deepEqual(scaled('bigquery'), ['processor', 'sink-redis', 'sink-warehouse', 'sink-external']);
  assert.deepEqual(scaled('no-keda'), []);
  assert.equal(named(rendered['no-keda']!, 'Deployment', 'processor')?.spec?.replicas, 3);
  const auth = of(rendered['managed-kafka']!, 'TriggerAuthentication');
  assert.equal(auth.length, 1, 'SASL: the scalers authenticate');
  assert.equal(of(rendered['managed-kafka']!, 'Secret').length, 0, 'existingSecret: the chart makes none');
});

test('every setting the chart writes is one the config schema knows', () => {
  const known = new Set(Object.keys(envSchema.shape));
  for (const [name, ms] of Object.entries(rendered)) {
    for (const m of [
      ...of(ms, 'ConfigMap').filter((c) => c.metadata.name.endsWith('-settings')),
      ...of(ms, 'Secret'),
    ]) {
      for (const key of Object.keys({ ...m.data, ...m.stringData }))
        assert.ok(known.has(key), `${name}: ${m.kind} sets ${key}`);
    }
    for (const d of of(ms, 'Deployment'))
      for (const e of (container(d).env as Obj[] | undefined) ?? [])
        assert.ok(known.has(e.name as string), `${name}: ${String(e.name)}`);
  }
});

test('the chart refuses replicas beyond the partitions and a second writer on a claim', () => {
  const tooMany = helm(['template', 'test', CHART, '--set', 'processor.autoscaling.maxReplicas=7']);
  assert.notEqual(tooMany.code, 0);
  assert.match(tooMany.stderr, /processor: 7 replicas but the topic has 6 partitions/);
  const noKeda = helm(['template', 'test', CHART, '--set', 'keda.enabled=false', '--set', 'processor.replicas=9']);
  assert.match(noKeda.stderr, /processor: 9 replicas/);
  // The BigQuery variant's two warehouse replicas, with DuckDB's file back on.
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'engage-chart-')), 'two-writers.yaml');
  const bigquery = readFileSync(VARIANTS.bigquery![0]!, 'utf8');
  writeFileSync(
    file,
    bigquery.replace(
      'persistence: { enabled: false }',
      'persistence: { enabled: true, variable: DUCKDB_PATH, path: /data/w.duckdb, size: 1Gi }',
    ),
  );
  const twoWriters = helm(['template', 'test', CHART, '-f', file]);
  rmSync(path.dirname(file), { recursive: true });
  assert.notEqual(twoWriters.code, 0);
  assert.match(twoWriters.stderr, /sink-warehouse: persistence means one writer; replicas must be 1 \(got 2\)/);
});

test('the Secret carries an API token and a pseudonym key, generated when not given (docs/security.md)', () => {
  for (const [name, ms] of Object.entries(rendered)) {
    const secret = of(ms, 'Secret')[0];
    const data = (secret?.stringData ?? {}) as Record<string, string>;
    const parsed = envSchema.safeParse({ API_TOKEN: data.API_TOKEN, PII_KEYS: data.PII_KEYS });
    assert.ok(parsed.success, `${name}: ${JSON.stringify(parsed.error?.issues)}`);
  }
  const given = render([], ['secrets.API_TOKEN=given-token-1', 'secrets.PII_KEYS=k9:' + 'x'.repeat(40)]);
  const data = (of(given, 'Secret')[0]?.stringData ?? {}) as Record<string, string>;
  assert.equal(data.API_TOKEN, 'given-token-1');
  assert.equal(data.PII_KEYS, 'k9:' + 'x'.repeat(40));
});
