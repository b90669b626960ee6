/**
 * The pipeline's liveness rules as a component's heartbeat `status` states them, read in one place
 * by both judges: the API's /health over every heartbeat (src/api/health/progress.ts) and each
 * component's own health endpoint (health-endpoint.ts). Pure; the status is free-form JSON (it may
 * come from Redis), so fields of the wrong type are ignored, never trusted.
 *
 * - `liveness: { ok, reasons }` — whether the component moves: a consumer that holds no partition
 *   while its group leaves partitions unheld (src/kafka/assignment-watch.ts), or a partition with
 *   lag and nothing in flight (stall-watch.ts), says `ok: false` with why. Absent: no finding.
 * - the partitions it holds — `partitions` (the sink runner) or `assigned` (the processor); absent
 *   for a component that consumes none (the CDC, the API).
 * - `waiting_since` — a write failing with retriable errors since then: an outage waited out.
 */

export interface Liveness {
  ok: boolean;
  reasons: string[];
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What the status says of the component's progress; ok when it says nothing. */
export function livenessOf(status: Record<string, unknown>): Liveness {
  const liveness = status.liveness;
  if (!isObj(liveness) || liveness.ok !== false) return { ok: true, reasons: [] };
  const reasons = Array.isArray(liveness.reasons)
    ? liveness.reasons.filter((r): r is string => typeof r === 'string')
    : [];
  return { ok: false, reasons };
}

/** The partitions the component holds, or null when it reports no assignment (consumes none). */
export function assignmentOf(status: Record<string, unknown>): number[] | null {
  for (const key of ['partitions', 'assigned']) {
    const v = status[key];
    if (Array.isArray(v)) return v.filter((p): p is number => typeof p === 'number');
  }
  return null;
}

/** Since when (ms) a write has been waiting out an outage, or null. */
export function waitingSinceOf(status: Record<string, unknown>): number | null {
  const since = typeof status.waiting_since === 'string' ? Date.parse(status.waiting_since) : Number.NaN;
  return Number.isFinite(since) ? since : null;
}
