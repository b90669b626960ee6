import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import { portHolder, tcpOpen } from '../stack/process.js';
import { stackUp } from '../stack/stack.js';
import { CRASH_WINDOW_MS } from '../supervisor/restart-policy.js';
import { startSupervisorHeartbeat } from '../supervisor/run-heartbeat.js';

interface Listener {
  host: string;
  port: number;
  what: string;
  fix: string;
}

/**
 * Fails before anything starts when a port `engage run` would listen on is held by another process:
 * a supervised component would only crash and be restarted forever, and another server on the
 * receiver's port would be sent the external sink's events.
 */
async function refuseTakenPorts(listeners: Listener[]): Promise<void> {
  for (const l of listeners) {
    const probeHost = l.host === '0.0.0.0' || l.host === '::' ? '127.0.0.1' : l.host;
    if (l.port === 0 || !(await tcpOpen(probeHost, l.port))) continue;
    const holder = portHolder(l.port);
    throw new PipelineError(
      'SERVICE_MISCONFIGURED',
      `port ${l.port} on ${l.host}, for ${l.what}, is taken by another process${holder ? ` (${holder})` : ''}: stop it or ${l.fix}`,
    );
  }
}

/** `engage run`: brings the stack up, then supervises every component until Ctrl-C. */
export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run the whole pipeline on this machine, each component supervised (Ctrl-C stops all)')
    .option('--with-generator', 'also run the data generator (continuous)', false)
    .option('--rate <n>', 'generator events per second', '50')
    .option(
      '--with-receiver',
      'also run the reference external receiver (and point the external sink at it when EXTERNAL_API_URL is unset)',
      false,
    )
    .option('--no-api', 'do not run the monitoring API')
    .option(
      '--sinks <list>',
      'comma-separated sinks to run (default: every registered sink that runs by default — src/sinks/registry.ts; an unknown name lists them)',
    )
    .option('--status-every <s>', 'seconds between status lines', '15')
    .action(
      async (opts: {
        withGenerator: boolean;
        rate: string;
        withReceiver: boolean;
        api: boolean;
        sinks?: string;
        statusEvery: string;
      }) => {
        const rate = Number(opts.rate);
        if (!Number.isFinite(rate) || rate <= 0)
          throw new PipelineError('USAGE', '--rate accepts a positive number of events per second');
        const statusEvery = Number(opts.statusEvery);
        if (!Number.isFinite(statusEvery) || statusEvery < 1)
          throw new PipelineError(
            'USAGE',
            `--status-every accepts a number of seconds, 1 or more (got ${JSON.stringify(opts.statusEvery)})`,
          );
        // Lazy: the registry (which the supervisor and the status figures read) loads every sink's dependencies.
        const [
          { defaultRunSinks, getSinkFactory, sinkNames },
          { Supervisor, componentSpecs, formatStatus },
          { RunFigures },
        ] = await Promise.all([
          import('../sinks/registry.js'),
          import('../supervisor/supervisor.js'),
          import('../supervisor/run-figures.js'),
        ]);
        const chosen = opts.sinks
          ?.split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const unknown = (chosen ?? []).filter((s) => !sinkNames().includes(s));
        if (unknown.length > 0)
          throw new PipelineError('USAGE', `--sinks accepts ${sinkNames().join(', ')}; unknown: ${unknown.join(', ')}`);
        const config = loadConfig();
        const sinks = chosen ?? defaultRunSinks(config);
        await refuseTakenPorts([
          ...(opts.api
            ? [
                {
                  host: config.API_HOST,
                  port: config.API_PORT,
                  what: 'the monitoring API',
                  fix: 'set API_PORT (or run with --no-api)',
                },
              ]
            : []),
          ...(opts.withReceiver
            ? [
                {
                  host: '127.0.0.1',
                  port: config.EXTERNAL_RECEIVER_PORT,
                  what: 'the reference receiver (the external sink would post the events to whatever holds it)',
                  fix: 'set EXTERNAL_RECEIVER_PORT',
                },
              ]
            : []),
        ]);
        process.stdout.write('engage run: bringing the stack up…\n');
        await stackUp(config, {
          onReady: (s, ms) =>
            process.stdout.write(
              `  ${s.name.padEnd(9)} ready in ${(ms / 1000).toFixed(1)} s (${s.startedByStack ? 'private' : 'yours'})\n`,
            ),
        });
        const logDir = path.resolve('data', 'logs');
        const specs = componentSpecs(config, {
          generator: opts.withGenerator,
          rate,
          receiver: opts.withReceiver,
          api: opts.api,
          sinks,
        });
        const sup = new Supervisor(specs, logDir, {}, (c, ms) => {
          const why = c.lastError ? `: ${c.lastError}` : '';
          const next =
            ms === null
              ? 'not restarting it: a restart cannot fix this (fix it, then start engage run again)'
              : `${c.crashLoop ? `crash loop (${c.crashes} crashes in ${CRASH_WINDOW_MS / 60_000} min); ` : ''}restarting in ${(ms / 1000).toFixed(1)} s`;
          process.stdout.write(`engage run: ${c.name} ended (${c.lastExit})${why}; ${next} (log: ${c.log})\n`);
        });
        sup.start();
        // The components' restarts, crash loops and fatal ends, for the API's /health.
        const heartbeat = startSupervisorHeartbeat(config, () => sup.status());
        const hostPort = `http://${config.API_HOST}:${config.API_PORT}`;
        process.stdout.write(
          [
            `engage run: ${specs.length} components started; logs in ${logDir}/<component>.log`,
            opts.api
              ? `  dashboard   ${hostPort}/\n  health      ${hostPort}/health\n  top content ${hostPort}/top-content\n  API docs    ${hostPort}/docs`
              : '',
            ...sinks.flatMap((name) => {
              const where = getSinkFactory(name).operations.destination?.(config);
              return where === undefined ? [] : [`  ${name.padEnd(11)} ${where}`];
            }),
            '  Ctrl-C stops everything cleanly.',
          ]
            .filter(Boolean)
            .join('\n') + '\n',
        );
        const figures = new RunFigures(config.redisUrl, config.REDIS_KEY_PREFIX);
        let timer: NodeJS.Timeout | undefined;
        const tick = async () => {
          const stages = await figures.sample();
          if (!timer) return; // stopping meanwhile
          process.stdout.write(`${new Date().toISOString()}\n${formatStatus(sup.status(), Date.now(), stages)}\n`);
          timer = setTimeout(() => void tick(), statusEvery * 1000);
        };
        timer = setTimeout(() => void tick(), statusEvery * 1000);
        await new Promise<void>((resolve) => {
          let stopping = false;
          const onSignal = () => {
            if (stopping) process.exit(130);
            stopping = true;
            clearTimeout(timer);
            timer = undefined;
            process.stdout.write('\nengage run: stopping every component (drain and commit)…\n');
            void sup.stop().then(() => {
              process.stdout.write(`${formatStatus(sup.status())}\nengage run: stopped.\n`);
              void Promise.all([figures.close(), heartbeat.stop()]).then(() => resolve());
            });
          };
          process.on('SIGINT', onSignal);
          process.on('SIGTERM', onSignal);
        });
      },
    );
}
