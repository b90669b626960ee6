import type { LiveHeartbeat } from '../heartbeats.js';
import { isLag, lagUnit } from '../metrics/classify.js';

/**
 * Reading what components put in their heartbeat `status` (free-form per component) and metrics,
 * tolerant of naming: a consumer lag may be `lag`, `consumer_lag` or `consumerLag`, a number or a
 * per-partition map; a circuit state may be a string or `{ state }`. Pure; never throws.
 */

type Obj = Record<string, unknown>;

const LAG_KEYS = ['consumer_lag', 'consumerLag', 'lag', 'total_lag', 'totalLag'];
const CIRCUIT_KEYS = ['circuit', 'circuit_state', 'circuitState', 'breaker', 'breaker_state'];
const OK_KEYS = ['ok', 'healthy', 'up'];

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A number, or the sum of a map/array of numbers (per-partition lags). */
function asTotal(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  const parts = Array.isArray(v) ? v : isObj(v) ? Object.values(v) : null;
  if (!parts) return null;
  let total: number | null = null;
  for (const p of parts) {
    const n = isObj(p) ? asTotal(p.lag ?? p.value) : asTotal(p);
    if (n !== null) total = (total ?? 0) + n;
  }
  return total;
}

/** The first key found on the object or one level down (e.g. `status.consumer.lag`). */
function find(status: Obj, keys: string[]): unknown {
  for (const k of keys) if (k in status) return status[k];
  for (const v of Object.values(status)) {
    if (!isObj(v)) continue;
    for (const k of keys) if (k in v) return v[k];
  }
  return undefined;
}

/** The consumer lag (records) one process reports: from its status, else its lag gauges. */
export function consumerLagOf(hb: LiveHeartbeat): number | null {
  const fromStatus = asTotal(find(hb.status, LAG_KEYS));
  if (fromStatus !== null) return fromStatus;
  let total: number | null = null;
  for (const m of hb.metricList) {
    if (!isLag(m.name, m.type) || lagUnit(m.name) !== 'records') continue;
    for (const v of m.values) if (Number.isFinite(v.value)) total = (total ?? 0) + v.value;
  }
  return total;
}

export type CircuitState = 'closed' | 'open' | 'half_open' | 'unknown';

/**
 * The circuit breaker's state as the external sink reports it: a status field (`circuit`,
 * `external.state`…), else its `…circuit_state` gauge (0 closed, 1 half-open, 2 open).
 */
export function circuitOf(hb: LiveHeartbeat): CircuitState {
  let v = find(hb.status, CIRCUIT_KEYS);
  if (v === undefined && isObj(hb.status.external)) v = hb.status.external.state;
  if (isObj(v)) v = v.state ?? v.status;
  if (typeof v === 'string') {
    const s = v.toLowerCase().replace(/[-\s]/g, '_');
    if (s === 'closed' || s === 'open' || s === 'half_open') return s;
    if (s === 'halfopen') return 'half_open';
    return 'unknown';
  }
  const gauge = hb.metricList.find((m) => m.type === 'gauge' && /circuit_state$/.test(m.name));
  const values = (gauge?.values ?? []).map((x) => x.value).filter(Number.isFinite);
  if (values.length === 0) return 'unknown';
  const worst = Math.max(...values);
  return worst >= 2 ? 'open' : worst >= 1 ? 'half_open' : 'closed';
}

/**
 * Whether a sink process is failing now: its last error (sink runner status `last_error.at`) is
 * newer than its last successful write (`last_write_at`). False when it reports neither.
 */
export function failingSinceLastWrite(hb: LiveHeartbeat): boolean {
  const err = hb.status.last_error;
  if (!isObj(err)) return false;
  const errAt = typeof err.at === 'number' ? err.at : typeof err.at === 'string' ? Date.parse(err.at) : Number.NaN;
  if (!Number.isFinite(errAt)) return false;
  const w = hb.status.last_write_at;
  const writeAt = typeof w === 'number' ? w : typeof w === 'string' ? Date.parse(w) : Number.NaN;
  return !Number.isFinite(writeAt) || errAt > writeAt;
}

/** Whether the process says it is healthy (`ok`/`healthy`/`up`, maybe under `health`); null if silent. */
export function reportedOk(hb: LiveHeartbeat, section?: string): boolean | null {
  const scoped = section && isObj(hb.status[section]) ? (hb.status[section] as Obj) : hb.status;
  const direct = OK_KEYS.map((k) => scoped[k]).find((v) => typeof v === 'boolean');
  if (typeof direct === 'boolean') return direct;
  const health = scoped.health;
  if (isObj(health)) {
    const nested = OK_KEYS.map((k) => health[k]).find((v) => typeof v === 'boolean');
    if (typeof nested === 'boolean') return nested;
  }
  return null;
}
