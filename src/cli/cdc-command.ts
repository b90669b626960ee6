import type { Command } from 'commander';
import { startCdc } from '../cdc/cdc.js';
import { loadConfig } from '../config/load.js';
import { runComponent } from '../runtime/lifecycle.js';

/** `engage cdc`: PostgreSQL → Kafka change data capture, exactly once (see docs/cdc.md). */
export function registerCdcCommand(program: Command): void {
  program
    .command('cdc')
    .description('stream every committed change of content and engagement_events to Kafka, exactly once (pgoutput logical replication)')
    .action(async () => {
      const config = loadConfig();
      await runComponent('cdc', config, ({ log }) => startCdc(config, log));
    });
}
