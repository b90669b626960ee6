import type { Command } from 'commander';
import { startCdc } from '../cdc/cdc.js';
import { loadConfig } from '../config/load.js';
import { runComponent } from '../runtime/lifecycle.js';

/**
 * `engage cdc`: PostgreSQL → Kafka change data capture, exactly once (see docs/cdc.md).
 * `--reset-position` is the one way to start over when the slot and Kafka's position disagree
 * ("CDC position missing", or a slot dropped behind the CDC's back): it drops the slot if any and
 * takes a new snapshot. Without such a disagreement it changes nothing.
 */
export function registerCdcCommand(program: Command): void {
  program
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
}
