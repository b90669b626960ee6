import os from 'node:os';
import { createClient } from 'redis';
import type { Config } from '../config/load.js';
import { registry } from '../core/metrics.js';
import { logger } from '../core/logger.js';

/**
 * Each component process publishes a heartbeat with its Prometheus registry (as prom-client JSON)
 * to Redis every `intervalMs`, under `<prefix>hb:<component>:<instance>` with a TTL of three
 * intervals. The API reads these to serve liveness per stage and the whole pipeline's metrics
 * (prom-client's AggregatorRegistry merges them), whichever process produced them.
 */

export interface Heartbeat {
  component: string;
  instance: string;
  pid: number;
  host: string;
  started_at: string;
  sent_at: string;
  /** Component-specific state for /health (e.g. lag, circuit state). */
  status: Record<string, unknown>;
  metrics: unknown;
}

export function heartbeatKey(prefix: string, component: string, instance: string): string {
  return `${prefix}hb:${component}:${instance}`;
}

const STOP_TIMEOUT_MS = 2000;

export interface HeartbeatHandle {
  stop(): Promise<void>;
}

export function startHeartbeat(
  config: Config,
  component: string,
  status: () => Record<string, unknown> = () => ({}),
  intervalMs = 2000,
): HeartbeatHandle {
  const instance = `${os.hostname()}-${process.pid}`;
  const startedAt = new Date().toISOString();
  // Fail fast while Redis is away (no offline queue: a beat is dropped, not queued), and reconnect.
  const client = createClient({ url: config.redisUrl, disableOfflineQueue: true, socket: { connectTimeout: 2000 } });
  client.on('error', () => undefined);
  let connecting: Promise<unknown> | undefined;
  const key = heartbeatKey(config.REDIS_KEY_PREFIX, component, instance);
  let timer: NodeJS.Timeout | undefined;
  const beat = async () => {
    try {
      if (!client.isOpen) {
        // The first connect's promise settles only once Redis answers: started once, never awaited
        // (beats are skipped until the client is ready; the first one is sent as soon as it is).
        connecting ??= client.connect().then(
          () => beat(),
          () => undefined,
        );
      }
      if (!client.isReady) return;
      const hb: Heartbeat = {
        component,
        instance,
        pid: process.pid,
        host: os.hostname(),
        started_at: startedAt,
        sent_at: new Date().toISOString(),
        status: status(),
        metrics: await registry.getMetricsAsJSON(),
      };
      await client.set(key, JSON.stringify(hb), { expiration: { type: 'PX', value: intervalMs * 3 } });
    } catch (err) {
      logger().debug({ err }, 'heartbeat not published (Redis unreachable?)');
    }
  };
  void beat();
  timer = setInterval(() => void beat(), intervalMs);
  timer.unref();
  return {
    /** Removes the heartbeat if Redis is there, within STOP_TIMEOUT_MS; never waits for an absent Redis. */
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      if (client.isReady) {
        const removed = Promise.all([client.del(key), client.close()]).catch(() => undefined);
        let timeout: NodeJS.Timeout | undefined;
        await Promise.race([removed, new Promise((resolve) => (timeout = setTimeout(resolve, STOP_TIMEOUT_MS)))]);
        clearTimeout(timeout);
      }
      if (client.isOpen) client.destroy();
    },
  };
}
