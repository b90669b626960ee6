import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import { runComponent } from '../runtime/lifecycle.js';

/**
 * `engage sink <name>`: runs one sink worker (any sink registered in src/sinks/registry.ts: redis,
 * warehouse, external, file) under the component lifecycle: heartbeat, SIGINT/SIGTERM drain (queued
 * batches written and committed), exit. An unknown name is a usage error (exit 2). Scale out by
 * starting more workers of the same sink: they share the partitions through their consumer group.
 */
export function registerSinkCommand(program: Command): void {
  program
    .command('sink')
    .description('run one sink worker: consume the enriched topic and deliver to the sink, exactly once in effect')
    .argument('<name>', "the sink's name, as registered in src/sinks/registry.ts (an unknown name lists them)")
    .option(
      '--check',
      'warehouse only: check credentials, dataset, tables, views and the write path, change nothing visible, and exit (non-zero when the sink could not run)',
    )
    .action(async (name: string, opts: { check?: boolean }) => {
      // Lazy: loading the registry loads every sink's dependencies.
      const { getSinkFactory, sinkStage } = await import('../sinks/registry.js');
      const factory = getSinkFactory(name);
      const config = loadConfig();
      if (opts.check) {
        const { runWarehouseCheck } = await import('../sinks/warehouse/check-command.js');
        if (factory.name !== 'warehouse')
          throw new PipelineError('USAGE', `--check is for the warehouse sink, not ${factory.name}`);
        process.exitCode = await runWarehouseCheck(config);
        return;
      }
      const { startSinkRunner } = await import('../runtime/sink-runner.js');
      await runComponent(sinkStage(factory.name), config, ({ config: c, log }) => startSinkRunner(c, factory, log));
    });
}
