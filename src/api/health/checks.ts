import { errorMessage, PipelineError } from '../../core/errors.js';

/**
 * The probes behind /health and /health/ready. Each one has a hard timeout and never throws: it
 * answers `{ ok: false, error }` instead, so one unreachable service cannot stall the others.
 */

/** Per-probe budget; /health answers within about this long even when a service hangs. */
export const CHECK_TIMEOUT_MS = 2000;

export interface ServiceCheck {
  ok: boolean;
  latency_ms: number;
  error?: string;
}

export interface SlotInfo {
  name: string;
  exists: boolean;
  active: boolean | null;
  /** WAL the server keeps for the slot: current LSN − restart_lsn. */
  retained_wal_bytes: number | null;
  /** How far the consumer's confirmed position trails: current LSN − confirmed_flush_lsn. */
  confirmed_lag_bytes: number | null;
}

export interface PostgresCheck extends ServiceCheck {
  slot: SlotInfo | null;
}

/** What the Postgres probe needs: a pg Pool or Client. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
}

export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PipelineError('TIMEOUT', `${what} did not answer within ${ms} ms`, { retriable: true })),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

async function timed<T>(
  what: string,
  timeoutMs: number,
  work: () => Promise<T>,
): Promise<{ value?: T; check: ServiceCheck }> {
  const t0 = performance.now();
  try {
    const value = await withTimeout(work(), timeoutMs, what);
    return { value, check: { ok: true, latency_ms: ms(t0) } };
  } catch (err) {
    return { check: { ok: false, latency_ms: ms(t0), error: errorMessage(err) } };
  }
}

const SLOT_SQL = `
  SELECT active,
         pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 AS retained,
         pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 AS confirmed_lag
    FROM pg_replication_slots
   WHERE slot_name = $1`;

/** Reachability plus the CDC slot's retained WAL and lag (slot null when the query failed). */
export async function checkPostgres(
  db: PgQueryable,
  slotName: string,
  timeoutMs = CHECK_TIMEOUT_MS,
): Promise<PostgresCheck> {
  const { value, check } = await timed('PostgreSQL', timeoutMs, () => db.query(SLOT_SQL, [slotName]));
  if (!value) return { ...check, slot: null };
  const row = value.rows[0];
  const slot: SlotInfo = row
    ? {
        name: slotName,
        exists: true,
        active: Boolean(row.active),
        retained_wal_bytes: numberOrNull(row.retained),
        confirmed_lag_bytes: numberOrNull(row.confirmed_lag),
      }
    : { name: slotName, exists: false, active: null, retained_wal_bytes: null, confirmed_lag_bytes: null };
  return { ...check, slot };
}

/** Redis answers PING. */
export async function checkRedis(ping: () => Promise<string>, timeoutMs = CHECK_TIMEOUT_MS): Promise<ServiceCheck> {
  const { value, check } = await timed('Redis', timeoutMs, ping);
  if (check.ok && value !== 'PONG')
    return { ok: false, latency_ms: check.latency_ms, error: `PING answered ${String(value)}` };
  return check;
}

/** Kafka answers a metadata request (src/kafka/admin.ts kafkaReady). */
export async function checkKafka(ready: () => Promise<boolean>, timeoutMs = CHECK_TIMEOUT_MS): Promise<ServiceCheck> {
  const { value, check } = await timed('Kafka', timeoutMs, ready);
  if (check.ok && value !== true)
    return { ok: false, latency_ms: check.latency_ms, error: 'the broker did not answer a metadata request' };
  return check;
}

function numberOrNull(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : null;
}

function ms(t0: number): number {
  return Math.round((performance.now() - t0) * 10) / 10;
}
