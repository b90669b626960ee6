import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import { runComponent } from '../runtime/lifecycle.js';

/**
 * `engage api [--port N] [--host H]`: the monitoring API and live dashboard (src/api). Flags
 * override API_PORT/API_HOST. Prints `listening on <url>` on stdout once ready; runs until
 * SIGINT/SIGTERM, then closes the server and its clients.
 */

export function parsePort(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new PipelineError(
      'USAGE',
      `--port accepts a whole number from 0 to 65535 (0 picks a free port); got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

export function registerApiCommand(program: Command): void {
  program
    .command('api')
    .description('serve the monitoring API and live dashboard (/, /health, /metrics, /top-content, /docs)')
    .option('--port <n>', 'port to listen on (default API_PORT, 8080; 0 picks a free one)')
    .option('--host <host>', 'address to bind (default API_HOST, 127.0.0.1)')
    .action(async (flags: { port?: string; host?: string }) => {
      const port = parsePort(flags.port);
      const base = loadConfig();
      const config = { ...base, API_PORT: port ?? base.API_PORT, API_HOST: flags.host ?? base.API_HOST };
      // Lazy: the API reads the sink registry, which loads every sink's dependencies.
      const { startApi } = await import('../api/start.js');
      await runComponent('api', config, async ({ log }) => {
        const api = await startApi(config, log);
        process.stdout.write(`listening on ${api.url}\n`);
        return api;
      });
    });
}
