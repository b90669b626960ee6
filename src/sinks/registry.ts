import { PipelineError } from '../core/errors.js';
import type { SinkFactory } from './contract.js';
import { redisSinkFactory } from './redis/index.js';
import { warehouseSinkFactory } from './warehouse/index.js';
import { externalSinkFactory } from './external/index.js';

/**
 * Every sink `engage sink <name>` can run, by name. Adding a sink = one folder under src/sinks/
 * exporting a SinkFactory, plus one line here. Import this module lazily (`await import`) from
 * commands, so a command that runs no sink does not load every sink's dependencies.
 */
export const SINKS: Record<string, SinkFactory> = {
  [redisSinkFactory.name]: redisSinkFactory,
  [warehouseSinkFactory.name]: warehouseSinkFactory,
  [externalSinkFactory.name]: externalSinkFactory,
};

export function sinkNames(): string[] {
  return Object.keys(SINKS).sort();
}

/** The factory registered under `name`; a USAGE error (exit 2) naming the known sinks otherwise. */
export function getSinkFactory(name: string): SinkFactory {
  const factory = Object.hasOwn(SINKS, name) ? SINKS[name] : undefined;
  if (!factory) throw new PipelineError('USAGE', `unknown sink ${JSON.stringify(name)}; known: ${sinkNames().join(', ')}`);
  return factory;
}
