import type { Command } from 'commander';
import { startCdc } from '../cdc/cdc.js';
import { followSnapshot, sendSnapshotSignal } from '../cdc/incremental-snapshot/signal.js';
import { loadConfig } from '../config/load.js';
import { runComponent } from '../runtime/lifecycle.js';

/**
 * `engage cdc`: PostgreSQL → Kafka change data capture, exactly once (see docs/cdc.md).
 * `--reset-position` is the one way to start over when the slot and Kafka's position disagree
 * ("CDC position missing", or a slot dropped behind the CDC's back): it drops the slot if any and
 * takes a new snapshot. Without such a disagreement it changes nothing.
 * `engage cdc snapshot --table … [--where …] [--follow]` asks the running CDC for an incremental
 * snapshot (a signal through the WAL, incremental-snapshot/signal.ts) and can follow its progress.
 */
export function registerCdcCommand(program: Command): void {
  const cdc = program
    .command('cdc')
    .description(
      'stream every committed change of content and engagement_events to Kafka, exactly once (pgoutput logical replication)',
    )
    .option(
      '--reset-position',
      'when the replication slot and the position in Kafka disagree (position topic gone or renamed, slot dropped), start over: drop the slot if any, create it anew and take a new snapshot',
    )
    .action(async (opts: { resetPosition?: boolean }) => {
      const config = loadConfig();
      await runComponent('cdc', config, ({ log }) =>
        startCdc(config, log, { resetPosition: opts.resetPosition === true }),
      );
    });
  cdc
    .command('snapshot')
    .description(
      'ask the running engage cdc for an incremental snapshot of a table (Debezium execute-snapshot signal, sent through the WAL), optionally of the rows matching --where; --follow prints rows, rows/s and ETA until it is done',
    )
    .requiredOption('--table <name...>', 'content and/or engagement_events')
    .option('--where <sql>', 'only the rows matching this SQL condition, e.g. "event_ts >= \'2026-01-01\'"')
    .option('--follow', 'print the progress every 2 s until the snapshot is done')
    .action(async (opts: { table: string[]; where?: string; follow?: boolean }) => {
      const config = loadConfig();
      const sent = await sendSnapshotSignal(config, opts.table, opts.where ?? null);
      process.stdout.write(`snapshot ${sent.id} requested for ${sent.tables.join(', ')}\n`);
      if (!opts.follow) return;
      await followSnapshot(config, sent.id, (s) => {
        const line =
          s.state === 'done'
            ? `done: ${s.rows} rows (last table)`
            : s.state === 'waiting'
              ? 'waiting for the CDC to reach the signal (or for an earlier snapshot to finish)'
              : `${s.view.table}: ${s.view.rows}${s.view.rows_estimate === null ? '' : ` of ~${s.view.rows_estimate}`} rows, ` +
                `chunk ${s.view.chunk}, ${s.view.rows_per_second ?? '?'} rows/s, ETA ${s.view.eta_seconds ?? '?'} s` +
                (s.view.tables_remaining.length ? `, then ${s.view.tables_remaining.join(', ')}` : '');
        process.stdout.write(`${new Date().toISOString()} ${line}\n`);
      });
    });
}
