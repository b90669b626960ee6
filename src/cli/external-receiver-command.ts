import path from 'node:path';
import { type Command, Option } from 'commander';
import { loadConfig } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import { startReceiver } from '../receiver/index.js';
import type { FaultPatch } from '../receiver/index.js';
import { runComponent } from '../runtime/lifecycle.js';

/**
 * `engage external-receiver`: the reference external system the external sink posts to (see
 * src/receiver/server.ts and docs/external.md). Prints `listening on <url>` on stdout once ready;
 * failures can be changed at runtime with POST /control.
 */

export const DEFAULT_RECEIVER_FILE = 'data/external-receiver.jsonl';

interface ReceiverFlags {
  port?: string;
  host: string;
  failRate?: string;
  latencyMs?: string;
  down?: boolean;
  status?: string;
  retryAfter?: string;
  failPhase?: 'before' | 'after';
  dataFile?: string | boolean;
  auth?: string;
}

function usage(message: string): PipelineError {
  return new PipelineError('USAGE', message);
}

function number(name: string, raw: string | undefined, min: number, max: number, integer = true): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw usage(
      `${name} accepts ${integer ? 'a whole number' : 'a number'} from ${min} to ${max} (got ${JSON.stringify(raw)})`,
    );
  }
  return n;
}

/** Turns the flags into receiver options; throws USAGE for a bad value. */
export function receiverFlags(flags: ReceiverFlags): {
  port: number | undefined;
  control: FaultPatch;
  dataFile: string | undefined;
} {
  const control: FaultPatch = {};
  const failRate = number('--fail-rate', flags.failRate, 0, 1, false);
  if (failRate !== undefined) control.failRate = failRate;
  const latency = number('--latency-ms', flags.latencyMs, 0, 600_000);
  if (latency !== undefined) control.latencyMs = latency;
  const status = number('--status', flags.status, 400, 599);
  if (status !== undefined) control.status = status;
  if (flags.retryAfter !== undefined) {
    control.retryAfter = /^\d+$/.test(flags.retryAfter) ? Number(flags.retryAfter) : flags.retryAfter;
  }
  if (flags.down === true) control.down = true;
  if (flags.failPhase !== undefined) control.failPhase = flags.failPhase;
  const dataFile =
    flags.dataFile === true ? DEFAULT_RECEIVER_FILE : typeof flags.dataFile === 'string' ? flags.dataFile : undefined;
  return { port: number('--port', flags.port, 0, 65535), control, dataFile };
}

export function registerExternalReceiverCommand(program: Command): void {
  program
    .command('external-receiver')
    .description('run the reference external system the external sink posts to (dedupes, can be told to fail)')
    .option('--port <n>', 'port to listen on (default EXTERNAL_RECEIVER_PORT; 0 picks a free one)')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--fail-rate <r>', 'probability (0..1) that a POST /events answers --status')
    .option('--latency-ms <m>', 'delay added before each POST /events is handled')
    .option('--down', 'drop every POST /events connection without answering')
    .option('--status <code>', 'status of injected failures (default 503; 429 with --retry-after)')
    .option('--retry-after <s>', 'Retry-After sent with injected failures (seconds or an HTTP-date)')
    .addOption(
      new Option('--fail-phase <phase>', 'fail before counting the batch, or after (a lost acknowledgement)').choices([
        'before',
        'after',
      ]),
    )
    .option(
      '--data-file [path]',
      `append accepted events to a JSONL file, restored on start (default path ${DEFAULT_RECEIVER_FILE})`,
    )
    .option('--auth <header>', 'required auth header "Name: value" (default EXTERNAL_API_AUTH_HEADER)')
    .action(async (flags: ReceiverFlags) => {
      const config = loadConfig();
      const parsed = receiverFlags(flags);
      await runComponent('external-receiver', config, async ({ log }) => {
        const receiver = await startReceiver({
          port: parsed.port ?? config.EXTERNAL_RECEIVER_PORT,
          host: flags.host,
          auth: flags.auth ?? config.EXTERNAL_API_AUTH_HEADER,
          dataFile: parsed.dataFile === undefined ? undefined : path.resolve(parsed.dataFile),
          control: parsed.control,
          log,
        });
        process.stdout.write(`listening on ${receiver.url}\n`);
        log.info(
          { url: receiver.url, control: receiver.control(), dataFile: parsed.dataFile ?? null },
          'external-receiver listening',
        );
        return {
          stop: () => receiver.close(),
          status: () => ({ url: receiver.url, ...receiver.stats(), control: receiver.control() }),
        };
      });
    });
}
