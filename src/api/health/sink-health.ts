import type { LiveHeartbeat } from '../heartbeats.js';

/**
 * What a sink says of itself: `status.health`, its `Sink.health()` answer as the sink runner
 * publishes it (src/runtime/health-poll.ts). A warning (degraded) for each sink instance answering
 * `ok: false`, naming its `detail.error` — unless a check of that stage's own (the warehouse's,
 * the external circuit's) already said so (`covered`). Pure; JSON from Redis, so fields of the
 * wrong type are ignored.
 */

export interface ReportedHealth {
  ok: boolean;
  error: string | null;
}

/** The sink's own answer in a heartbeat; null when it gives none. */
export function sinkHealthOf(hb: LiveHeartbeat): ReportedHealth | null {
  const h = hb.status.health;
  if (typeof h !== 'object' || h === null) return null;
  const o = h as Record<string, unknown>;
  if (typeof o.ok !== 'boolean') return null;
  const detail = typeof o.detail === 'object' && o.detail !== null ? (o.detail as Record<string, unknown>) : {};
  return { ok: o.ok, error: typeof detail.error === 'string' ? detail.error : null };
}

export function sinkHealthWarnings(fresh: readonly LiveHeartbeat[], covered: ReadonlySet<string>): string[] {
  const warnings: string[] = [];
  for (const hb of fresh) {
    if (!hb.component.startsWith('sink-') || covered.has(hb.component)) continue;
    const h = sinkHealthOf(hb);
    if (h === null || h.ok) continue;
    warnings.push(
      `stage ${hb.component} (${hb.instance}) reports its sink unhealthy${h.error === null ? '' : `: ${h.error}`}`,
    );
  }
  return warnings;
}
