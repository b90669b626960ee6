import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import {
  GENERATE_MODES,
  generateBatch,
  generateHistorical,
  runContinuous,
  type GenerateMode,
  type GenerateSummary,
  type Progress,
} from '../generator/modes.js';
import { startGeneratorLiveMetrics } from '../generator/live-metrics.js';

/**
 * `engage generate --mode continuous|batch|historical`: synthetic engagement into engagement_events.
 * Progress goes to stderr (at most once a second), the summary to stdout. SIGINT/SIGTERM stop the
 * run cleanly (what was written stays) and still print the summary; a second signal exits at once.
 */

interface GenerateFlags {
  mode: GenerateMode;
  rate?: number;
  duration?: number;
  batchSize?: number;
  windowMinutes?: number;
  historicalDays?: number;
  eventsPerDay?: number;
  seed?: number;
  users?: number;
  now?: number;
}

const positiveInt =
  (flag: string) =>
  (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1)
      throw new InvalidArgumentError(`${flag} accepts a whole number ≥ 1`);
    return n;
  };
const positiveNumber =
  (flag: string) =>
  (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0)
      throw new InvalidArgumentError(`${flag} accepts a number above 0`);
    return n;
  };
const seedValue = (value: string): number => {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('--seed accepts a whole number ≥ 0');
  return n;
};
const instant = (value: string): number => {
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw new InvalidArgumentError('--now accepts an ISO-8601 timestamp, e.g. 2026-01-31T12:00:00Z');
  return ms;
};

/** Which flags belong to which mode (anything else given with that mode is a usage error). */
const MODE_FLAGS: Record<GenerateMode, ReadonlyArray<keyof GenerateFlags>> = {
  continuous: ['rate', 'duration'],
  batch: ['batchSize', 'windowMinutes'],
  historical: ['historicalDays', 'eventsPerDay'],
};
const FLAG_NAMES: Partial<Record<keyof GenerateFlags, string>> = {
  rate: '--rate',
  duration: '--duration',
  batchSize: '--batch-size',
  windowMinutes: '--window-minutes',
  historicalDays: '--historical-days',
  eventsPerDay: '--events-per-day',
};

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('write realistic synthetic engagement events into PostgreSQL')
    .addOption(
      new Option(
        '--mode <mode>',
        'continuous (live, until stopped), batch (N rows now) or historical (D days of history)',
      )
        .choices(GENERATE_MODES)
        .default('continuous'),
    )
    .option('--rate <n>', 'continuous: events per second (default 10)', positiveNumber('--rate'))
    .option(
      '--duration <s>',
      'continuous: stop after this many seconds (default: until SIGINT/SIGTERM)',
      positiveNumber('--duration'),
    )
    .option('--batch-size <n>', 'batch: number of events (default 1000)', positiveInt('--batch-size'))
    .option(
      '--window-minutes <m>',
      'batch: spread timestamps over this many minutes before now (default 10)',
      positiveNumber('--window-minutes'),
    )
    .option(
      '--historical-days <d>',
      'historical: number of days before now to fill (default 7)',
      positiveInt('--historical-days'),
    )
    .option('--events-per-day <n>', 'historical: events per day (default 10000)', positiveInt('--events-per-day'))
    .option('--seed <n>', 'seed for a reproducible run (default: random, printed in the summary)', seedValue)
    .option('--users <n>', 'size of the user pool (default 5000)', positiveInt('--users'))
    .option(
      '--now <iso>',
      'anchor timestamps at this instant instead of the clock (reproducible batch/historical runs)',
      instant,
    )
    .action(async (flags: GenerateFlags, cmd: Command) => {
      const misplaced = (Object.keys(FLAG_NAMES) as Array<keyof GenerateFlags>).filter(
        (k) => flags[k] !== undefined && !MODE_FLAGS[flags.mode].includes(k),
      );
      if (misplaced.length > 0) {
        throw new PipelineError(
          'USAGE',
          `${misplaced.map((k) => FLAG_NAMES[k]).join(', ')} cannot be used with --mode ${flags.mode}\n${cmd.helpInformation()}`,
        );
      }
      const config = loadConfig();
      const abort = new AbortController();
      const onSignal = (sig: NodeJS.Signals) => {
        if (abort.signal.aborted) process.exit(130);
        process.stderr.write(`\n${sig}: stopping (a second ${sig} exits at once)\n`);
        abort.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const common = {
        seed: flags.seed,
        users: flags.users,
        nowMs: flags.now,
        onProgress: progressPrinter(flags.mode === 'continuous' ? 5000 : 1000),
      };
      try {
        let result: GenerateSummary;
        if (flags.mode === 'batch') {
          result = await generateBatch(
            config,
            { ...common, batchSize: flags.batchSize ?? 1000, windowMinutes: flags.windowMinutes },
            abort.signal,
          );
        } else if (flags.mode === 'historical') {
          result = await generateHistorical(
            config,
            { ...common, days: flags.historicalDays ?? 7, eventsPerDay: flags.eventsPerDay },
            abort.signal,
          );
        } else {
          if (flags.duration === undefined)
            process.stderr.write(`generating ${flags.rate ?? 10} events/s until stopped (Ctrl-C)\n`);
          const live = startGeneratorLiveMetrics(config);
          const onProgress = (p: Progress) => {
            live.rows(p.rows);
            common.onProgress(p);
          };
          try {
            result = await runContinuous(
              config,
              { ...common, onProgress, rate: flags.rate, durationSeconds: flags.duration },
              abort.signal,
            );
          } finally {
            await live.stop();
          }
        }
        process.stdout.write(formatSummary(result));
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

function progressPrinter(everyMs: number): (p: Progress) => void {
  let last = Number.NEGATIVE_INFINITY;
  return (p) => {
    // The first write is reported at once (rows are flowing), then at most every `everyMs`.
    if (p.elapsedMs - last < everyMs && p.rows !== p.total) return;
    last = p.elapsedMs;
    const secs = p.elapsedMs / 1000;
    const pct = p.total ? ` / ${p.total.toLocaleString('en-US')} (${((100 * p.rows) / p.total).toFixed(0)}%)` : '';
    process.stderr.write(
      `${p.mode}: ${p.rows.toLocaleString('en-US')}${pct} rows in ${secs.toFixed(1)} s, ${Math.round(p.rows / Math.max(secs, 0.001)).toLocaleString('en-US')} rows/s\n`,
    );
  };
}

export function formatSummary(s: GenerateSummary): string {
  return (
    `generate ${s.mode}${s.interrupted ? ' (stopped early)' : ''}: ${s.rows.toLocaleString('en-US')} rows, ${s.sessions.toLocaleString('en-US')} sessions ` +
    `in ${s.seconds.toFixed(2)} s (${Math.round(s.rowsPerSecond).toLocaleString('en-US')} rows/s); seed ${String(s.seed)}\n`
  );
}
