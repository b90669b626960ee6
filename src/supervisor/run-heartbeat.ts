import type { Config } from '../config/load.js';
import { startHeartbeat, type HeartbeatHandle } from '../runtime/heartbeat.js';
import type { ChildStatus } from './child.js';
import { CRASH_WINDOW_MS } from './restart-policy.js';

/**
 * `engage run`'s own heartbeat (the same Redis heartbeat as every component's,
 * src/runtime/heartbeat.ts), as component SUPERVISOR_COMPONENT: its status lists each supervised
 * component with its restarts, its crashes within the crash window, whether that is a crash loop
 * and why a component is no longer restarted. The API reads it like any heartbeat, so /health
 * shows what only the supervisor knows: a component between two crashes publishes nothing.
 */

export const SUPERVISOR_COMPONENT = 'supervisor';

/** One supervised component in the heartbeat's `status.components` (the wire format /health reads). */
export interface SupervisedReport {
  name: string;
  state: string;
  restarts: number;
  /** Unexpected ends within the last `crash_window_minutes`. */
  crashes: number;
  crash_loop: boolean;
  /** Set when the supervisor stopped restarting it: the fatal error it ended with. */
  not_restarted: string | null;
  last_exit: string | null;
  last_error: string | null;
}

export interface SupervisorStatus {
  crash_window_minutes: number;
  components: SupervisedReport[];
}

/** The heartbeat's status for the supervised components' statuses. Pure. */
export function supervisorStatus(rows: readonly ChildStatus[]): SupervisorStatus {
  return {
    crash_window_minutes: CRASH_WINDOW_MS / 60_000,
    components: rows.map((r) => ({
      name: r.name,
      state: r.state,
      restarts: r.restarts,
      crashes: r.crashes,
      crash_loop: r.crashLoop,
      not_restarted: r.notRestarted ?? null,
      last_exit: r.lastExit ?? null,
      last_error: r.lastError ?? null,
    })),
  };
}

/** Publishes the supervisor's heartbeat until stopped (skipped while Redis is away, like every heartbeat). */
export function startSupervisorHeartbeat(config: Config, rows: () => readonly ChildStatus[]): HeartbeatHandle {
  return startHeartbeat(config, SUPERVISOR_COMPONENT, () => ({ ...supervisorStatus(rows()) }));
}
