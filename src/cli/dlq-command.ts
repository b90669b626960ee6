import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';

/**
 * `engage dlq list [--stage S] [--limit N] [--json]`: the newest DLQ entries (stage, code, reason,
 * source position, a preview of the original value) and counts by stage and code.
 * `engage dlq replay --stage processor|sink:<name> [--dry-run]`: replays the stage's entries once
 * the cause is fixed (see src/dlq/replay.ts) and prints the counts; entries that fail again are
 * parked again with attempts + 1.
 */

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('accepts a whole number ≥ 1');
  return n;
};

export function registerDlqCommand(program: Command): void {
  const dlq = program.command('dlq').description('inspect and replay the dead-letter queue');
  dlq
    .command('list')
    .description('show the newest DLQ entries with their reason, stage and source position')
    .option('--stage <stage>', 'only entries of this stage (processor, sink:redis, sink:warehouse, sink:external)')
    .option('--limit <n>', 'how many of the newest entries to show', positiveInt, 20)
    .option('--json', 'print the entries as JSON lines (full entries, value in base64)')
    .action(async (flags: { stage?: string; limit: number; json?: boolean }) => {
      const config = loadConfig();
      const { listDlq, formatListing } = await import('../dlq/list.js');
      const listing = await listDlq(config, { stage: flags.stage, limit: flags.limit });
      if (flags.json) {
        for (const e of listing.entries) process.stdout.write(`${JSON.stringify({ dlq_partition: e.dlqPartition, dlq_offset: e.dlqOffset, replay: e.replay, ...e.entry })}\n`);
      } else {
        process.stdout.write(formatListing(listing));
      }
    });
  dlq
    .command('replay')
    .description('replay a stage’s DLQ entries once fixed: sink:<name> into that sink, processor back to its source topic')
    .requiredOption('--stage <stage>', 'processor | sink:<name>')
    .option('--dry-run', 'only count what would be replayed')
    .action(async (flags: { stage: string; dryRun?: boolean }) => {
      const config = loadConfig();
      const { replayDlq, isReplayableStage } = await import('../dlq/replay.js');
      if (!isReplayableStage(flags.stage)) throw new PipelineError('USAGE', `cannot replay stage ${JSON.stringify(flags.stage)}: use processor or sink:<name>`);
      let factory;
      if (flags.stage.startsWith('sink:')) {
        const { getSinkFactory } = await import('../sinks/registry.js');
        factory = getSinkFactory(flags.stage.slice('sink:'.length));
      }
      const log = createLogger(config.LOG_LEVEL, 'engage-dlq-replay');
      const r = await replayDlq(config, log, { stage: flags.stage, dryRun: flags.dryRun, factory });
      const codes = Object.entries(r.byCode).map(([c, n]) => `${c}=${n}`).join(' ') || 'none';
      process.stdout.write(`stage ${r.stage}: ${r.pending} pending of ${r.scanned} DLQ messages scanned (by code: ${codes})\n`);
      if (r.dryRun) process.stdout.write('dry run: nothing replayed\n');
      else process.stdout.write(`replayed ${r.replayed}, failed again ${r.failedAgain} (parked again with attempts + 1)\n`);
    });
}
