import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig, privatePorts } from '../config/load.js';
import { stackDown, stackEnv, stackStatus, stackUp } from '../stack/stack.js';
import { redact } from '../stack/postgres.js';
import { MAX_KAFKA_BROKERS } from '../stack/kafka-nodes.js';

/** Who runs a service, for `stack status`: the stack, the environment's, or nobody yet. */
function whose(r: { up: boolean; startedByStack: boolean }, origin: 'env' | 'stack'): string {
  if (r.startedByStack) return 'started by the stack';
  if (origin === 'env') return 'yours, from the environment';
  return r.up ? 'on the private port, not started by this stack' : 'private, not running: `engage stack up` starts it';
}

/** `engage stack up | down | status | env`. */
export function registerStackCommand(program: Command): void {
  const stack = program
    .command('stack')
    .description('start, inspect or stop the local services (PostgreSQL, Kafka, Redis, the schema registry)');
  stack
    .command('up')
    .description('start what is not configured and wait until every service is ready (idempotent)')
    .option(
      '--kafka-brokers <n>',
      `nodes of the private Kafka, each a broker and controller (1–${MAX_KAFKA_BROKERS}; default STACK_KAFKA_BROKERS, else as its storage was formatted, else 1)`,
      (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > MAX_KAFKA_BROKERS)
          throw new InvalidArgumentError(`a whole number from 1 to ${MAX_KAFKA_BROKERS}`);
        return n;
      },
    )
    .action(async (opts: { kafkaBrokers?: number }) => {
      const config = loadConfig();
      const t0 = Date.now();
      await stackUp(config, {
        kafkaBrokers: opts.kafkaBrokers,
        onReady: (s, ms) =>
          process.stdout.write(
            `${s.name.padEnd(9)} ready in ${(ms / 1000).toFixed(1)} s  ${redact(s.url)}  (${s.startedByStack ? 'private, started by the stack' : 'yours, from the environment'})\n`,
          ),
      });
      process.stdout.write(
        `stack up in ${((Date.now() - t0) / 1000).toFixed(1)} s; \`engage stack env\` prints the addresses\n`,
      );
    });
  stack
    .command('status')
    .description('show each service, its address, whether it answers and who started it')
    .action(async () => {
      const config = loadConfig();
      const rows = await stackStatus(config);
      for (const r of rows) {
        process.stdout.write(
          `${r.name.padEnd(9)} ${r.up ? 'up  ' : 'DOWN'}  ${redact(r.url).padEnd(55)} ${whose(r, config.origins[r.name])}${r.log ? `  log: ${r.log}` : ''}\n`,
        );
        for (const n of r.nodes ?? [])
          process.stdout.write(
            `${''.padEnd(15)}node ${n.id} ${n.up ? 'up  ' : 'DOWN'}  ${n.url}  pid ${n.pid}  log: ${n.log}\n`,
          );
        if (r.name === 'kafka' && r.up && r.startedByStack) {
          // The running broker's own offset (its recorded port), which may differ from today's STACK_PORT_OFFSET.
          const first = r.url.split(',')[0] ?? '';
          const ports = privatePorts(Number(first.split(':').at(-1)) - privatePorts(0).kafka);
          const at = (port: number) => `127.0.0.1:${port}`;
          process.stdout.write(
            `${''.padEnd(15)}also SASL_PLAINTEXT ${at(ports.kafkaSasl)}, SSL ${at(ports.kafkaTls)} (client certificate), SASL_SSL ${at(ports.kafkaSaslTls)}${r.nodes ? " (node 1's; every node's at its port + 2, + 3, + 4)" : ''}: docs/operations.md\n`,
          );
        }
      }
      if (rows.some((r) => !r.up)) process.exitCode = 1;
    });
  stack
    .command('down')
    .description('stop the services the stack started (never one it did not start)')
    .action(async () => {
      await stackDown(loadConfig(), (name) => process.stdout.write(`${name} stopped\n`));
    });
  stack
    .command('env')
    .description('print the resolved addresses as shell export lines: eval "$(engage stack env)"')
    .action(() => {
      process.stdout.write(stackEnv(loadConfig()));
    });
}
