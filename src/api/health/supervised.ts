import { SUPERVISOR_COMPONENT } from '../../supervisor/run-heartbeat.js';
import type { LiveHeartbeat } from '../heartbeats.js';

/**
 * What `engage run`'s heartbeat (src/supervisor/run-heartbeat.ts) adds to /health. Pure.
 *
 * - a problem (unhealthy) for a component the supervisor no longer restarts: it ended with a fatal
 *   error (bad configuration, a misconfigured service) and stays down until someone acts;
 * - a warning (degraded) for a component in a crash loop: restarted with backoff, but crashing
 *   again and again (its last error is quoted).
 *
 * Its input is JSON from Redis: fields of the wrong type are ignored, never trusted.
 */

export interface SupervisedFindings {
  problems: string[];
  warnings: string[];
}

export function supervisedFindings(fresh: readonly LiveHeartbeat[]): SupervisedFindings {
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const hb of fresh) {
    if (hb.component !== SUPERVISOR_COMPONENT) continue;
    const window = typeof hb.status.crash_window_minutes === 'number' ? hb.status.crash_window_minutes : null;
    const components = Array.isArray(hb.status.components) ? (hb.status.components as unknown[]) : [];
    for (const c of components) {
      if (typeof c !== 'object' || c === null) continue;
      const o = c as Record<string, unknown>;
      if (typeof o.name !== 'string') continue;
      const where = `component ${o.name} (engage run on ${hb.host}, pid ${hb.pid})`;
      if (typeof o.not_restarted === 'string') {
        problems.push(`${where}: not restarted after a fatal error: ${o.not_restarted}`);
      } else if (o.crash_loop === true) {
        const crashes = typeof o.crashes === 'number' ? `${o.crashes} crashes` : 'crashes';
        const last =
          typeof o.last_error === 'string'
            ? `; last: ${o.last_error}`
            : typeof o.last_exit === 'string'
              ? `; last: ${o.last_exit}`
              : '';
        warnings.push(
          `${where}: crash loop, ${crashes}${window === null ? '' : ` in ${window} min`}, restarted with backoff${last}`,
        );
      }
    }
  }
  return { problems, warnings };
}
