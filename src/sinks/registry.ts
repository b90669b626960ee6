import type { Config } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import type { RegisteredSinkFactory } from '../core/sink-contract.js';
import { redisSinkFactory } from './redis/index.js';
import { warehouseSinkFactory } from './warehouse/index.js';
import { externalSinkFactory } from './external/index.js';
import { fileSinkFactory } from './file/index.js';

/**
 * Every sink, by name: the single source of what sinks exist. `engage sink <name>`, `engage dlq
 * replay --stage sink:<name>`, `engage run`'s components, /health's expected stages, /metrics'
 * stage order and freshness targets and the EngageFreshnessAboveTarget rule
 * (scripts/generate-alerts.ts) all derive from it through the factories' `operations`. Adding a
 * sink = one folder under src/sinks/ exporting a SinkFactory, plus one line here.
 * Loading this module loads every sink's dependencies (DuckDB, BigQuery's client): commands that
 * run no sink import it lazily (`await import`).
 */
export const SINKS: Readonly<Record<string, RegisteredSinkFactory>> = registry([
  redisSinkFactory,
  warehouseSinkFactory,
  externalSinkFactory,
  fileSinkFactory,
]);

/** The stage (component, heartbeat and metrics name) of a sink's worker process. */
export function sinkStage(name: string): string {
  return `sink-${name}`;
}

/** The registered sinks in their display order (then by name). */
export function registeredSinks(
  sinks: Readonly<Record<string, RegisteredSinkFactory>> = SINKS,
): RegisteredSinkFactory[] {
  return Object.values(sinks).sort((a, b) => a.operations.order - b.operations.order || a.name.localeCompare(b.name));
}

export function sinkNames(): string[] {
  return Object.keys(SINKS).sort();
}

/** The factory registered under `name`; a USAGE error (exit 2) naming the known sinks otherwise. */
export function getSinkFactory(name: string): RegisteredSinkFactory {
  const factory = Object.hasOwn(SINKS, name) ? SINKS[name] : undefined;
  if (!factory)
    throw new PipelineError('USAGE', `unknown sink ${JSON.stringify(name)}; known: ${sinkNames().join(', ')}`);
  return factory;
}

/** The sinks `engage run` runs without `--sinks`, in display order. */
export function defaultRunSinks(config: Config): string[] {
  return registeredSinks()
    .filter((f) => f.operations.runByDefault(config))
    .map((f) => f.name);
}

/** The components /health expects when API_EXPECTED_COMPONENTS is unset: the CDC, the processor and the default sinks. */
export function defaultExpectedComponents(config: Config): string[] {
  return ['cdc', 'processor', ...defaultRunSinks(config).map(sinkStage)];
}

/** Each sink stage's freshness promise in seconds, in display order. */
export function sinkFreshnessTargets(): Record<string, number> {
  return Object.fromEntries(registeredSinks().map((f) => [sinkStage(f.name), f.operations.freshnessTargetSeconds]));
}

/** The sink stages in display order. */
export function sinkStageOrder(): string[] {
  return registeredSinks().map((f) => sinkStage(f.name));
}

function registry(factories: RegisteredSinkFactory[]): Record<string, RegisteredSinkFactory> {
  const out: Record<string, RegisteredSinkFactory> = {};
  for (const f of factories) {
    if (!/^[a-z][a-z0-9]*$/.test(f.name))
      throw new Error(
        `sink name ${JSON.stringify(f.name)}: lower-case letters and digits only (it names a stage, a consumer group and a metrics label)`,
      );
    if (Object.hasOwn(out, f.name)) throw new Error(`sink ${f.name} is registered twice`);
    out[f.name] = f;
  }
  return out;
}
