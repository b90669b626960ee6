import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createClient } from 'redis';
import { PipelineError } from '../core/errors.js';
import type { PrivatePorts } from '../config/load.js';
import { isAlive, portTakenMessage, spawnDetached, tcpOpen, waitUntil } from './process.js';
import type { ServiceState } from '../config/stack-state.js';

/** Redis for the stack: a configured server is used as given; otherwise Debian's `redis-server`
 *  runs privately on its own port and folder, without persistence (like the machine's own). */

export async function redisAnswers(url: string): Promise<boolean> {
  const client = createClient({ url, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    if (client.isOpen) await client.quit().catch(() => undefined);
  }
}

export async function startPrivateRedis(
  stackDir: string,
  ports: PrivatePorts,
  previous: ServiceState | undefined,
): Promise<ServiceState> {
  const dir = path.join(stackDir, 'redis');
  const log = path.join(dir, 'redis.log');
  const port = ports.redis;
  const url = `redis://127.0.0.1:${port}`;
  if (previous?.startedByStack && isAlive(previous.pid) && (await redisAnswers(url))) return previous;
  if (await tcpOpen('127.0.0.1', port)) {
    throw new PipelineError('STACK_START_FAILED', portTakenMessage(port, 'Redis', 'Stop it, set REDIS_URL to use it'));
  }
  mkdirSync(dir, { recursive: true });
  const pid = spawnDetached(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--logfile',
      '',
    ],
    log,
  );
  await waitUntil('Redis (private)', () => redisAnswers(url), { timeoutMs: 30000, log, alive: () => isAlive(pid) });
  return { url, startedByStack: true, pid, log, dataDir: dir };
}
