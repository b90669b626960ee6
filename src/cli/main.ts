import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { EXIT_USAGE, exitCodeFor, PipelineError } from '../core/errors.js';
import { exitProcess } from '../core/exit.js';
import { registerApiCommand } from './api-command.js';
import { registerCdcCommand } from './cdc-command.js';
import { registerExternalReceiverCommand } from './external-receiver-command.js';
import { registerGenerateCommand } from './generate-command.js';
import { registerRunCommand } from './run-command.js';
import { registerStackCommand } from './stack-command.js';
import { registerProcessCommand } from './process-command.js';
import { registerSinkCommand } from './sink-command.js';
import { registerDlqCommand } from './dlq-command.js';
import { registerPiiCommand } from './pii-command.js';
import { watchLauncher } from './launcher-watch.js';

/**
 * The `engage` CLI. Each command lives in its own file and registers itself here (one line each).
 * Usage errors (unknown command, mode or flag) print usage and exit 2; a PipelineError prints its
 * code and message and exits 1, or 78 (EXIT_CONFIG) when a restart cannot fix it (src/core/errors.ts
 * exitCodeFor), so a supervisor (`engage run`, systemd's RestartPreventExitStatus) stops restarting it.
 */

/** The package's version (package.json), for `engage --version`. */
function packageVersion(): string {
  const file = fileURLToPath(new URL('../../package.json', import.meta.url));
  return String((JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version ?? 'unknown');
}

export function buildProgram(): Command {
  const program = new Command('engage')
    .description(
      'Real-time engagement pipeline: PostgreSQL CDC → Kafka → enrichment → Redis, warehouse, external system',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();
  registerStackCommand(program);
  registerSinkCommand(program);
  registerDlqCommand(program);
  registerApiCommand(program);
  registerCdcCommand(program);
  registerProcessCommand(program);
  registerRunCommand(program);
  registerExternalReceiverCommand(program);
  registerGenerateCommand(program);
  registerPiiCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
        return 0;
      return EXIT_USAGE;
    }
    if (err instanceof PipelineError) {
      process.stderr.write(`engage: ${err.code}: ${err.message}\n`);
      return exitCodeFor(err);
    }
    process.stderr.write(`engage: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

// Run when this file is the process's entry point (bin/engage.mjs, `tsx src/cli/main.ts`,
// `node --import tsx src/cli/main.ts`), not when a test imports it.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  watchLauncher({
    onGone: (pid) =>
      process.stderr.write(`engage: the process that launched this command (pid ${pid}) is gone; stopping\n`),
  });
  main(process.argv.slice(2)).then((code) => exitProcess(code));
}
