import { Gauge, type Registry } from 'prom-client';
import type { Config } from '../../config/load.js';
import { defaultExpectedComponents } from '../../sinks/registry.js';
import type { ApiDeps } from '../deps.js';
import { isFresh, readHeartbeats, type LiveHeartbeat } from '../heartbeats.js';
import { checkKafka, checkPostgres, checkRedis, withTimeout, CHECK_TIMEOUT_MS } from './checks.js';
import { evaluateHealth, type HealthReport } from './evaluate.js';

/**
 * Runs the health probes at most once per CACHE_MS, however many callers ask (/health, /health/ready,
 * /metrics/prometheus, several dashboards): concurrent callers share the run in flight, later ones
 * the cached report. Each refresh also sets the `engage_health_*` gauges on the API's registry, so
 * Prometheus alerts can see a service or component down even when that component cannot say so.
 */

export const CACHE_MS = 1000;

export class HealthService {
  private cached: { at: number; report: HealthReport; heartbeats: LiveHeartbeat[] } | undefined;
  private inFlight: Promise<{ report: HealthReport; heartbeats: LiveHeartbeat[] }> | undefined;
  private readonly serviceUp: Gauge<'service'>;
  private readonly componentUp: Gauge<'component'>;
  private readonly slotRetained: Gauge<'slot'>;
  private readonly slotLag: Gauge<'slot'>;
  private readonly slotActive: Gauge<'slot'>;

  constructor(
    private readonly config: Config,
    private readonly deps: ApiDeps,
    apiRegistry: Registry,
    private readonly now: () => number = Date.now,
  ) {
    const registers = [apiRegistry];
    this.serviceUp = new Gauge({
      name: 'engage_health_service_up',
      help: 'Whether the API reaches a service (postgres, kafka, redis): 1 up, 0 down',
      labelNames: ['service'],
      registers,
    });
    this.componentUp = new Gauge({
      name: 'engage_health_component_up',
      help: 'Live instances of a pipeline component (fresh heartbeats); 0 for an expected component that is down',
      labelNames: ['component'],
      registers,
    });
    this.slotRetained = new Gauge({
      name: 'engage_health_slot_retained_wal_bytes',
      help: 'WAL PostgreSQL retains for the CDC replication slot (current LSN - restart_lsn)',
      labelNames: ['slot'],
      registers,
    });
    this.slotLag = new Gauge({
      name: 'engage_health_slot_confirmed_lag_bytes',
      help: 'How far the CDC slot confirmed position trails the current WAL (current LSN - confirmed_flush_lsn)',
      labelNames: ['slot'],
      registers,
    });
    this.slotActive = new Gauge({
      name: 'engage_health_slot_active',
      help: 'Whether a consumer is attached to the CDC replication slot: 1 yes, 0 no',
      labelNames: ['slot'],
      registers,
    });
  }

  /** The full report, at most CACHE_MS old. */
  async report(): Promise<HealthReport> {
    return (await this.snapshot()).report;
  }

  /** The report and the heartbeats it was built from (the latter for /metrics). */
  async snapshot(): Promise<{ report: HealthReport; heartbeats: LiveHeartbeat[] }> {
    const c = this.cached;
    if (c && this.now() - c.at < CACHE_MS) return c;
    this.inFlight ??= this.refresh().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Fresh heartbeats only; cheap (one SCAN + MGET), uncached, throws when Redis is unreachable. */
  async heartbeats(): Promise<LiveHeartbeat[]> {
    const all = await withTimeout(
      readHeartbeats(this.deps.redis, this.config.REDIS_KEY_PREFIX),
      CHECK_TIMEOUT_MS,
      'Redis',
    );
    const now = this.now();
    return all.filter((hb) => isFresh(hb, now));
  }

  private async refresh(): Promise<{ report: HealthReport; heartbeats: LiveHeartbeat[] }> {
    const [postgres, kafka, redis, heartbeats] = await Promise.all([
      checkPostgres(this.deps.db, this.config.CDC_SLOT_NAME),
      checkKafka(() => this.deps.kafkaReady()),
      checkRedis(() => this.deps.redis.ping()),
      readHeartbeats(this.deps.redis, this.config.REDIS_KEY_PREFIX).then(
        (hbs) => hbs,
        () => null,
      ),
    ]);
    const nowMs = this.now();
    const report = evaluateHealth({
      nowMs,
      postgres,
      kafka,
      redis,
      heartbeats,
      expected: this.config.API_EXPECTED_COMPONENTS?.split(',') ?? defaultExpectedComponents(this.config),
      walWarnBytes: this.config.CDC_WAL_WARN_BYTES,
      warehouseBackend: this.config.warehouse,
    });
    this.setGauges(report);
    const fresh = (heartbeats ?? []).filter((hb) => isFresh(hb, nowMs));
    this.cached = { at: nowMs, report, heartbeats: fresh };
    return this.cached;
  }

  private setGauges(report: HealthReport): void {
    for (const [name, check] of Object.entries(report.services))
      this.serviceUp.set({ service: name }, check.ok ? 1 : 0);
    this.componentUp.reset();
    for (const [name, stage] of Object.entries(report.stages))
      this.componentUp.set({ component: name }, stage.instances.length);
    const slot = report.replication_slot;
    this.slotRetained.reset();
    this.slotLag.reset();
    this.slotActive.reset();
    if (slot?.exists) {
      if (slot.retained_wal_bytes !== null) this.slotRetained.set({ slot: slot.name }, slot.retained_wal_bytes);
      if (slot.confirmed_lag_bytes !== null) this.slotLag.set({ slot: slot.name }, slot.confirmed_lag_bytes);
      this.slotActive.set({ slot: slot.name }, slot.active ? 1 : 0);
    }
  }
}
