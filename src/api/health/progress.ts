import { livenessOf, waitingSinceOf } from '../../runtime/status-rules.js';
import type { LiveHeartbeat } from '../heartbeats.js';

/**
 * What /health makes of the progress a component reports in its heartbeat `status` (pure; the
 * fields are read by src/runtime/status-rules.ts, which each component's own health endpoint uses too):
 *
 * - `liveness: { ok: false, reasons }` — the component runs but does not move: its consumer holds
 *   no partition while its group leaves partitions with lag unheld, or a partition has lag and
 *   nothing in flight (src/kafka/assignment-watch.ts, src/runtime/stall-watch.ts). A beating
 *   heartbeat does not make it healthy: this is a problem (unhealthy).
 * - `waiting_since: <ISO time>` — a write has been failing with retriable errors since then: an
 *   outage waited out, records held back and lag growing, nothing parked. A warning (degraded).
 * - `last_truncate: { at, tables }` (the CDC) — a TRUNCATE of a captured table, which the sinks do
 *   not mirror (docs/cdc.md): a warning for TRUNCATE_WARN_MS after it, so an operator sees it.
 */

export const TRUNCATE_WARN_MS = 15 * 60_000;

export interface ProgressFindings {
  problems: string[];
  warnings: string[];
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function progressFindings(heartbeats: readonly LiveHeartbeat[], nowMs: number): ProgressFindings {
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const hb of heartbeats) {
    const who = `stage ${hb.component} (${hb.instance})`;
    const liveness = livenessOf(hb.status);
    if (!liveness.ok)
      problems.push(`${who} makes no progress: ${liveness.reasons.join('; ') || 'it reports itself stuck'}`);
    const truncate = hb.status.last_truncate;
    if (isObj(truncate) && typeof truncate.at === 'string' && nowMs - Date.parse(truncate.at) < TRUNCATE_WARN_MS) {
      const tables = Array.isArray(truncate.tables) ? truncate.tables.join(', ') : 'a table';
      warnings.push(
        `${who} saw TRUNCATE of ${tables} at ${truncate.at} (${String(hb.status.table_truncates ?? 1)} in all): the sinks keep what they hold, new events may reuse ids`,
      );
    }
    const since = waitingSinceOf(hb.status);
    if (since !== null) {
      const last =
        isObj(hb.status.last_error) && typeof hb.status.last_error.message === 'string'
          ? `: ${hb.status.last_error.message}`
          : '';
      warnings.push(
        `${who} is waiting for its system for ${Math.max(0, Math.round((nowMs - since) / 1000))} s (retrying, nothing parked)${last}`,
      );
    }
  }
  return { problems, warnings };
}
