import { createHash } from 'node:crypto';
import { ErrorReply, createClient } from 'redis';

/** The node-redis client type the Redis sink and reader use (what `createClient()` returns). */
export type RedisClient = ReturnType<typeof createClient>;

/**
 * A Lua script run with EVALSHA. The SHA1 is computed locally; when Redis answers NOSCRIPT (first
 * use, or a Redis restart flushed its script cache) the script is loaded and the call repeated
 * once. EVALSHA/EVAL never run a script twice for one call, so the retry is safe.
 */
export class LuaScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async load(client: RedisClient): Promise<void> {
    const sha = await client.scriptLoad(this.source);
    if (sha !== this.sha) throw new Error(`script ${this.name}: Redis computed SHA ${sha}, expected ${this.sha}`);
  }

  /**
   * EVALSHA through `sendCommand` with one argument array: node-redis's `evalSha` spreads the
   * arguments into a call, which overflows the stack past ~100,000 arguments (a 5,000-event batch
   * spread over many minutes and contents comes close).
   */
  async run(client: RedisClient, keys: string[], args: string[]): Promise<unknown> {
    const command = ['EVALSHA', this.sha, String(keys.length)].concat(keys, args);
    try {
      return await client.sendCommand(command);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      await this.load(client);
      return await client.sendCommand(command);
    }
  }
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/**
 * Whether a Redis failure is worth another attempt: connection trouble, and the server states
 * that pass (loading a dump, busy script, failover, out of memory until keys expire). A Lua
 * runtime error or a wrong argument is not.
 */
export function isTransientRedisError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof TypeError || err instanceof RangeError) return false;
  if (!(err instanceof ErrorReply)) return true;
  return /^(LOADING|BUSY|TRYAGAIN|READONLY|MASTERDOWN|OOM|CLUSTERDOWN)\b/.test(err.message);
}

/**
 * Creates a client that fails fast while disconnected (commands are not queued: the caller's retry
 * decides) and connects it. The first connection gives up after about `connectRetries` attempts
 * (≈ 10 s by default); once connected, the client reconnects for as long as it lives.
 */
export async function connectRedis(url: string, name: string, connectRetries = 8): Promise<RedisClient> {
  let everReady = false;
  const client = createClient({
    url,
    name,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 5000,
      reconnectStrategy: (retries, cause) =>
        !everReady && retries >= connectRetries ? cause : Math.min(50 * 2 ** retries, 2000),
    },
  });
  client.on('error', () => undefined);
  client.on('ready', () => {
    everReady = true;
  });
  await client.connect();
  return client;
}
