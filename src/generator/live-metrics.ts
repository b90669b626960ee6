import { Counter } from 'prom-client';
import type { Config } from '../config/load.js';
import { enableDefaultMetrics, registry } from '../core/metrics.js';
import { startHeartbeat } from '../runtime/heartbeat.js';

/**
 * A continuous generator as a component the rest of the pipeline can see: it publishes a heartbeat
 * (Redis, like every component, src/runtime/heartbeat.ts) carrying `engage_generator_rows_total`
 * and its process metrics, so `GET /metrics`, `/health` and `engage run`'s status line show what it
 * wrote and at what rate. With Redis unreachable the heartbeat is skipped and the generator runs on.
 *
 * Contract: `rows(total)` is given the run's cumulative row count (as `Progress.rows`), any number
 * of times; `stop` removes the heartbeat (the generator no longer counts as live).
 */
export interface GeneratorLiveMetrics {
  rows(total: number): void;
  stop(): Promise<void>;
}

export function startGeneratorLiveMetrics(config: Config): GeneratorLiveMetrics {
  enableDefaultMetrics('generator');
  const written = new Counter({
    name: 'engage_generator_rows_total',
    help: 'engagement_events rows the generator committed',
    registers: [registry],
  });
  let counted = 0;
  const heartbeat = startHeartbeat(config, 'generator', () => ({ rows: counted }));
  return {
    rows(total) {
      if (total > counted) written.inc(total - counted);
      counted = Math.max(counted, total);
    },
    stop: () => heartbeat.stop(),
  };
}
