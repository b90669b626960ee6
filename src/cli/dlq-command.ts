import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../core/logger.js';
import type { SinkFactory } from '../core/sink-contract.js';

/**
 * `engage dlq list [--stage S] [--limit N] [--json]`: the newest DLQ entries (stage, code, reason,
 * source position, a preview of the original value) and counts by stage and code.
 * `engage dlq replay --stage processor|sink:<name> [--dry-run]`: replays the stage's entries once
 * the cause is fixed (see src/dlq/replay.ts) and prints the counts: for a sink stage, the entries
 * that failed again (parked again with attempts + 1); for the processor, only how many were re-sent
 * (it judges them later, and parks one that fails again as a new entry).
 * Both refuse an unknown stage, or a sink stage naming no registered sink, as a usage error (exit 2).
 */

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('accepts a whole number ≥ 1');
  return n;
};

/** Checks `--stage` for `use` (a USAGE error otherwise); for a `sink:<name>` stage, the registered sink. */
async function stageSink(stage: string, use: 'replay' | 'list'): Promise<SinkFactory | undefined> {
  const { checkStage } = await import('../dlq/replay.js');
  checkStage(stage, use);
  if (!stage.startsWith('sink:')) return undefined;
  const { getSinkFactory } = await import('../sinks/registry.js');
  return getSinkFactory(stage.slice('sink:'.length));
}

export function registerDlqCommand(program: Command): void {
  const dlq = program.command('dlq').description('inspect and replay the dead-letter queue');
  dlq
    .command('list')
    .description('show the newest DLQ entries with their reason, stage and source position')
    .option(
      '--stage <stage>',
      'only entries of this stage (processor, sink:redis, sink:warehouse, sink:external, backfill)',
    )
    .option('--limit <n>', 'how many of the newest entries to show', positiveInt, 20)
    .option('--json', 'print the entries as JSON lines (full entries, value in base64)')
    .action(async (flags: { stage?: string; limit: number; json?: boolean }) => {
      if (flags.stage !== undefined) await stageSink(flags.stage, 'list');
      const config = loadConfig();
      const { listDlq, formatListing } = await import('../dlq/list.js');
      const listing = await listDlq(config, { stage: flags.stage, limit: flags.limit });
      if (flags.json) {
        for (const e of listing.entries)
          process.stdout.write(
            `${JSON.stringify({ dlq_partition: e.dlqPartition, dlq_offset: e.dlqOffset, replay: e.replay, ...e.entry })}\n`,
          );
      } else {
        process.stdout.write(formatListing(listing));
      }
    });
  dlq
    .command('replay')
    .description(
      'replay a stage’s DLQ entries once fixed: sink:<name> into that sink, processor back to its source topic',
    )
    .requiredOption('--stage <stage>', 'processor | sink:<name>')
    .option('--dry-run', 'only count what would be replayed')
    .action(async (flags: { stage: string; dryRun?: boolean }) => {
      const factory = await stageSink(flags.stage, 'replay');
      const config = loadConfig();
      const { replayDlq, formatReplayResult } = await import('../dlq/replay.js');
      const log = createLogger(config.LOG_LEVEL, 'engage-dlq-replay');
      const r = await replayDlq(config, log, { stage: flags.stage, dryRun: flags.dryRun, factory });
      process.stdout.write(formatReplayResult(r));
    });
}
