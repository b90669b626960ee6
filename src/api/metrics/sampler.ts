import type { Registry } from 'prom-client';
import type { ApiDeps } from '../deps.js';
import type { PromMetric } from '../heartbeats.js';
import type { HealthService } from '../health/service.js';
import type { MetricSource } from './merge.js';
import { heartbeatInputs, type ComponentInfo, type MetricsSummarizer, type MetricsSummary } from './summary.js';
import { STEP_MS, type TrendHistory } from './trends.js';

/**
 * Where /metrics, /metrics/prometheus and /metrics/history get their inputs, and the API's one
 * background task: every `intervalMs` (one trend step) it reads the heartbeats, summarises them and
 * records the summary in the trend history, so the last 15 minutes exist whether or not anyone is
 * looking, and the first /metrics call already has rates. Every /metrics call records too (the
 * history downsamples). A failed tick (Redis away) is skipped; the next one tries again.
 *
 * Sources: the fresh heartbeats in Redis (each process's registry), this process's registry and
 * the API's own (HTTP and `engage_health_*`). This process's own heartbeat is skipped: its live
 * registry replaces it. With Redis down only the API's own metrics remain.
 */

export interface SamplerDeps {
  deps: ApiDeps;
  health: HealthService;
  apiRegistry: Registry;
  summarizer: MetricsSummarizer;
  trends: TrendHistory;
}

async function registryJson(registry: Registry): Promise<PromMetric[]> {
  return (await registry.getMetricsAsJSON()) as unknown as PromMetric[];
}

export class MetricsSampler {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;

  constructor(
    private readonly opts: SamplerDeps,
    private readonly intervalMs = STEP_MS,
  ) {}

  /** Every source's metrics and its process, read now. */
  async collect(): Promise<{ sources: MetricSource[]; components: ComponentInfo[] }> {
    const { deps, health, apiRegistry } = this.opts;
    const heartbeats = await health.heartbeats().catch(() => []);
    const now = Date.now();
    const others = heartbeats.filter((hb) => !(hb.component === 'api' && hb.instance === deps.instance));
    const { sources, components } = heartbeatInputs(others);
    const own = [...(await registryJson(deps.processRegistry)), ...(await registryJson(apiRegistry))];
    sources.push({ component: 'api', instance: deps.instance, atMs: now, metrics: own });
    components.push({
      component: 'api',
      instance: deps.instance,
      startedAtMs: now - process.uptime() * 1000,
      sentAtMs: now,
    });
    return { sources, components };
  }

  /** The current summary (GET /metrics), recorded in the trend history. */
  async sample(): Promise<MetricsSummary> {
    const { sources, components } = await this.collect();
    const now = Date.now();
    const summary = this.opts.summarizer.summarize(sources, components, now, process.uptime());
    this.opts.trends.record(summary, now);
    return summary;
  }

  /** Samples now and then every interval until `stop` (the timer does not keep the process alive). */
  start(): void {
    if (this.timer) return;
    const tick = (): void => {
      if (this.inFlight) return; // a slow Redis: one tick at a time
      this.inFlight = true;
      void this.sample()
        .catch(() => undefined)
        .finally(() => (this.inFlight = false));
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
