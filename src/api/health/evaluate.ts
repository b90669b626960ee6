import { isFresh, type LiveHeartbeat } from '../heartbeats.js';
import type { PostgresCheck, ServiceCheck, SlotInfo } from './checks.js';
import { circuitOf, consumerLagOf, failingSinceLastWrite, reportedOk, type CircuitState } from './status-fields.js';
import { supervisedFindings } from './supervised.js';
import { progressFindings } from './progress.js';
import { sinkHealthOf, sinkHealthWarnings } from './sink-health.js';

/**
 * Turns probe results and heartbeats into the /health report. Pure.
 *
 * - `unhealthy` (HTTP 503): PostgreSQL, Kafka or Redis is unreachable, an expected stage
 *   (API_EXPECTED_COMPONENTS) has no fresh heartbeat, or a stage reports it makes no progress
 *   (progress.ts): data is not flowing.
 * - A stage waiting out an outage of its system (retrying, nothing parked) is `degraded`.
 * - `degraded` (HTTP 200): everything runs but needs attention: the slot retains more WAL than
 *   CDC_WAL_WARN_BYTES, a stage's consumer lag is above CONSUMER_LAG_WARN records, the external
 *   system's circuit is open or half-open, the warehouse sink fails since its last write, or a
 *   sink reports itself unhealthy (its `Sink.health()`, published in its heartbeat: sink-health.ts).
 * - `healthy` (HTTP 200): none of the above.
 */

export const CONSUMER_LAG_WARN = 10_000;

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface InstanceReport {
  instance: string;
  pid: number;
  host: string;
  uptime_seconds: number;
  heartbeat_age_seconds: number;
  consumer_lag: number | null;
  status: Record<string, unknown>;
}

export interface StageReport {
  ok: boolean;
  expected: boolean;
  instances: InstanceReport[];
  /** Sum over the stage's instances (each owns different partitions); null when none reports one. */
  consumer_lag: number | null;
}

export interface HealthReport {
  status: HealthStatus;
  checked_at: string;
  problems: string[];
  warnings: string[];
  services: { postgres: ServiceCheck; kafka: ServiceCheck; redis: ServiceCheck };
  replication_slot: (SlotInfo & { warn_bytes: number }) | null;
  stages: Record<string, StageReport>;
  warehouse: {
    backend: 'duckdb' | 'bigquery';
    reported: boolean;
    ok: boolean | null;
    detail: Record<string, unknown> | null;
  };
  external: { circuit: CircuitState; reported: boolean };
}

export interface HealthInputs {
  nowMs: number;
  postgres: PostgresCheck;
  kafka: ServiceCheck;
  redis: ServiceCheck;
  /** null when Redis could not be read (then no stage can be shown alive). */
  heartbeats: LiveHeartbeat[] | null;
  expected: string[];
  walWarnBytes: number;
  warehouseBackend: 'duckdb' | 'bigquery';
}

export function evaluateHealth(inp: HealthInputs): HealthReport {
  const problems: string[] = [];
  const warnings: string[] = [];
  const { postgres: pgCheck, kafka, redis } = inp;
  const services = { postgres: stripSlot(pgCheck), kafka, redis };
  for (const [name, c] of Object.entries(services))
    if (!c.ok) problems.push(`${name} unreachable: ${c.error ?? 'no answer'}`);

  const fresh = (inp.heartbeats ?? []).filter((hb) => isFresh(hb, inp.nowMs));
  const byComponent = new Map<string, LiveHeartbeat[]>();
  for (const hb of fresh) byComponent.set(hb.component, [...(byComponent.get(hb.component) ?? []), hb]);

  const stages: Record<string, StageReport> = {};
  const names = [...new Set([...inp.expected, ...byComponent.keys()])];
  for (const name of names) {
    const hbs = byComponent.get(name) ?? [];
    const instances = hbs.map((hb) => instanceReport(hb, inp.nowMs));
    const lags = instances.map((i) => i.consumer_lag).filter((v): v is number => v !== null);
    const stage: StageReport = {
      ok: hbs.length > 0,
      expected: inp.expected.includes(name),
      instances,
      consumer_lag: lags.length > 0 ? lags.reduce((s, v) => s + v, 0) : null,
    };
    stages[name] = stage;
    if (stage.expected && !stage.ok) {
      problems.push(
        inp.heartbeats === null
          ? `stage ${name}: unknown (heartbeats are kept in Redis, which is unreachable)`
          : `stage ${name}: no heartbeat in the last 6 s (not running?)`,
      );
    }
    if (stage.consumer_lag !== null && stage.consumer_lag > CONSUMER_LAG_WARN) {
      warnings.push(`stage ${name}: consumer lag ${stage.consumer_lag} records (above ${CONSUMER_LAG_WARN})`);
    }
  }

  // engage run's components: one it no longer restarts is a problem, a crash loop a warning.
  const supervised = supervisedFindings(fresh);
  problems.push(...supervised.problems);
  warnings.push(...supervised.warnings);

  // A heartbeat proves a process runs, not that it moves: what it reports of its progress.
  const progress = progressFindings(fresh, inp.nowMs);
  problems.push(...progress.problems);
  warnings.push(...progress.warnings);

  const slot = pgCheck.slot ? { ...pgCheck.slot, warn_bytes: inp.walWarnBytes } : null;
  if (slot?.exists && slot.retained_wal_bytes !== null && slot.retained_wal_bytes > inp.walWarnBytes) {
    warnings.push(
      `replication slot ${slot.name} retains ${slot.retained_wal_bytes} bytes of WAL (above CDC_WAL_WARN_BYTES=${inp.walWarnBytes})`,
    );
  }
  if (slot?.exists && slot.active === false && stages.cdc?.ok)
    warnings.push(`replication slot ${slot.name} is not active although the CDC runs`);

  // The two sinks with report fields of their own; every sink's self-reported health after them.
  const covered = new Set<string>();
  const wh = byComponent.get('sink-warehouse')?.[0];
  // Not ok when it says so (an explicit `ok`, else its health) or fails since its last successful write.
  const whOk = wh ? reportedOk(wh, 'warehouse') !== false && !failingSinceLastWrite(wh) : null;
  if (whOk === false) {
    covered.add('sink-warehouse');
    warnings.push(
      `the warehouse sink cannot write: ${describeError(wh?.status.last_error) ?? (wh ? sinkHealthOf(wh)?.error : null) ?? 'it reports its warehouse unhealthy'}`,
    );
  }
  const ext = byComponent.get('sink-external') ?? [];
  const circuits = ext.map(circuitOf);
  const circuit: CircuitState = circuits.includes('open')
    ? 'open'
    : circuits.includes('half_open')
      ? 'half_open'
      : circuits.includes('closed')
        ? 'closed'
        : 'unknown';
  if (circuit === 'open' || circuit === 'half_open') {
    covered.add('sink-external');
    warnings.push(
      `the external system's circuit is ${circuit.replace('_', '-')} (the external sink is holding deliveries)`,
    );
  }
  warnings.push(...sinkHealthWarnings(fresh, covered));

  return {
    status: problems.length > 0 ? 'unhealthy' : warnings.length > 0 ? 'degraded' : 'healthy',
    checked_at: new Date(inp.nowMs).toISOString(),
    problems,
    warnings,
    services,
    replication_slot: slot,
    stages,
    warehouse: { backend: inp.warehouseBackend, reported: wh !== undefined, ok: whOk, detail: wh ? wh.status : null },
    external: { circuit, reported: ext.length > 0 },
  };
}

function describeError(e: unknown): string | null {
  if (typeof e !== 'object' || e === null) return null;
  const o = e as Record<string, unknown>;
  return typeof o.message === 'string' ? `${typeof o.code === 'string' ? `${o.code}: ` : ''}${o.message}` : null;
}

function stripSlot(c: PostgresCheck): ServiceCheck {
  return c.error === undefined
    ? { ok: c.ok, latency_ms: c.latency_ms }
    : { ok: c.ok, latency_ms: c.latency_ms, error: c.error };
}

function instanceReport(hb: LiveHeartbeat, nowMs: number): InstanceReport {
  const started = Date.parse(hb.started_at);
  return {
    instance: hb.instance,
    pid: hb.pid,
    host: hb.host,
    uptime_seconds: Number.isFinite(started) ? Math.round((nowMs - started) / 100) / 10 : 0,
    heartbeat_age_seconds: Math.round(Math.max(0, nowMs - hb.sentAtMs) / 100) / 10,
    consumer_lag: consumerLagOf(hb),
    status: hb.status,
  };
}
