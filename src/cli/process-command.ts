import { Option, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import { runComponent } from '../runtime/lifecycle.js';

/**
 * `engage process --mode stream`: the stream processor (docs/processor.md) — change events →
 * enriched records, exactly once; run several for scale-out (they share the partitions).
 * `engage process --mode backfill --start-date D --end-date D [--restart] [--direct sinks]`:
 * re-reads a date range from PostgreSQL and enriches it with the same transform, into the enriched
 * topic or, with --direct, straight into the named sinks (src/backfill/run.ts).
 * A missing or unknown mode, or dates with the wrong mode, is a usage error (exit 2).
 */

interface ProcessOptions {
  mode: 'stream' | 'backfill';
  startDate?: string;
  endDate?: string;
  restart?: boolean;
  progress?: boolean;
  direct?: string[];
  pageSize?: string;
  /** commander's negation of --no-bulk-import: true unless given. */
  bulkImport?: boolean;
}

/** The largest page a backfill reads at once (memory grows with it: ~3 pages of enriched events are held). */
const MAX_PAGE_ROWS = 500_000;

export function registerProcessCommand(program: Command): void {
  program
    .command('process')
    .description(
      'enrich engagement change events: --mode stream (continuous, exactly once) or --mode backfill (a date range from PostgreSQL)',
    )
    .addOption(new Option('--mode <mode>', 'stream | backfill').choices(['stream', 'backfill']).makeOptionMandatory())
    .option('--start-date <date>', 'backfill: first day, YYYY-MM-DD (UTC, inclusive)')
    .option('--end-date <date>', 'backfill: last day, YYYY-MM-DD (UTC, inclusive)')
    .option('--restart', 'backfill: ignore saved progress and start the range from its beginning')
    .option('--no-progress', 'backfill: no progress bar')
    .option(
      '--page-size <rows>',
      `backfill: rows read from PostgreSQL per page, 1–${MAX_PAGE_ROWS.toLocaleString('en-US')} (default 20,000, or what the --direct sinks write best: 122,880 — one row group — for DuckDB, 50,000 for BigQuery); smaller holds less memory`,
    )
    .option(
      '--direct <sinks>',
      'backfill: write these sinks in this process instead of through the enriched topic (comma-separated; sinks that dedupe on the event id: warehouse, external); other sinks get nothing from the run',
      (v: string) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
    )
    .option(
      '--no-bulk-import',
      'backfill --direct: enrich every row in this process, even for sinks that can import pages as PostgreSQL COPY writes them (the DuckDB warehouse)',
    )
    .action(async (opts: ProcessOptions) => {
      if (opts.mode === 'stream') {
        if (
          opts.startDate !== undefined ||
          opts.endDate !== undefined ||
          opts.restart ||
          opts.direct !== undefined ||
          opts.pageSize !== undefined ||
          opts.bulkImport === false
        ) {
          throw new PipelineError(
            'USAGE',
            '--start-date, --end-date, --restart, --direct, --page-size and --no-bulk-import apply to --mode backfill only',
          );
        }
        const config = loadConfig();
        const { startProcessor } = await import('../processor/processor.js');
        await runComponent('processor', config, ({ config: c, log }) => startProcessor(c, log));
        return;
      }
      await runBackfillMode(opts);
    });
}

async function runBackfillMode(opts: ProcessOptions): Promise<void> {
  const { parseDateRange } = await import('../backfill/range.js');
  parseDateRange(opts.startDate, opts.endDate);
  const pageSize = opts.pageSize === undefined ? undefined : Number(opts.pageSize);
  if (pageSize !== undefined && !(Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= MAX_PAGE_ROWS)) {
    throw new PipelineError(
      'USAGE',
      `--page-size accepts a whole number of rows from 1 to ${MAX_PAGE_ROWS.toLocaleString('en-US')} (got ${JSON.stringify(opts.pageSize)})`,
    );
  }
  if (opts.direct !== undefined) {
    const [{ directFactories }, { getSinkFactory }] = await Promise.all([
      import('../backfill/direct-target.js'),
      import('../sinks/registry.js'),
    ]);
    directFactories(opts.direct, getSinkFactory);
  }
  const config = loadConfig();
  const { runBackfill } = await import('../backfill/run.js');
  await runComponent('backfill', config, async ({ config: c, log, signal }) => {
    const finished = runBackfill(
      c,
      {
        startDate: opts.startDate ?? '',
        endDate: opts.endDate ?? '',
        restart: opts.restart,
        progress: opts.progress,
        direct: opts.direct,
        pageSize,
        bulk: opts.bulkImport !== false,
        signal,
      },
      log,
    ).then((r) => {
      const parked = Object.entries(r.parked)
        .map(([stage, n]) => `, ${n} parked in the DLQ by ${stage}`)
        .join('');
      const bulk = r.importedPages > 0 ? `; ${r.importedPages} of ${r.pages} pages imported in bulk` : '';
      process.stdout.write(
        `backfill ${r.range}: read ${r.read}, delivered ${r.delivered}, dlq ${r.dlq}${parked} in ${r.seconds.toFixed(1)} s (${Math.round(r.rate)} events/s)${r.resumed ? ', resumed' : ''}${bulk}\n`,
      );
    });
    return {
      done: finished,
      stop: () => finished.catch(() => undefined),
    };
  });
}
