import { createServer, type Server } from 'node:http';
import { errorMessage, PipelineError } from '../core/errors.js';
import { assignmentOf, livenessOf, type Liveness } from './status-rules.js';

/**
 * A component's own health endpoint, for an orchestrator's probes (Kubernetes liveness and
 * readiness, Compose health checks): served by every long-running command when HEALTH_PORT is set
 * (lifecycle.ts). Generic: it judges the component's heartbeat `status` with the rules the API's
 * /health applies to every heartbeat (status-rules.ts), never by naming a stage.
 *
 * - `GET /health/live`: 200 unless the component reports that it makes no progress (`liveness.ok`
 *   false: a consumer starved of partitions its group leaves unheld, a partition with lag and
 *   nothing moving) or its status cannot be read; 503 with the reasons. Starting and draining are
 *   live (an outage waited out is too: it shows as `waiting_since`, not here), so a restart is asked
 *   for only where the pipeline's own rules see a stuck process.
 * - `GET /health/ready`: 200 once started (its clients connected), not stopping, live, and — for a
 *   consumer, which reports the partitions it holds — holding at least one; else 503 with why.
 * - `GET /health`: both verdicts and the status itself.
 * Every answer is JSON; anything else is 404. The endpoint never holds the process open.
 */

export type ComponentPhase = 'starting' | 'running' | 'stopping';

export interface ComponentHealthInput {
  phase: ComponentPhase;
  /** The component's heartbeat status; throws are answered as not live. */
  status(): Record<string, unknown>;
}

export interface Verdict {
  ok: boolean;
  reasons: string[];
}

export interface ComponentHealth {
  live: Verdict;
  ready: Verdict;
  phase: ComponentPhase;
  partitions: number[] | null;
  status: Record<string, unknown> | null;
}

/** The verdicts (pure but for calling `status`). */
export function componentHealth(input: ComponentHealthInput): ComponentHealth {
  let status: Record<string, unknown> | null = null;
  let liveness: Liveness;
  if (input.phase === 'running') {
    try {
      status = input.status();
      liveness = livenessOf(status);
    } catch (err) {
      liveness = { ok: false, reasons: [`its status cannot be read: ${errorMessage(err)}`] };
    }
  } else liveness = { ok: true, reasons: [] };
  const partitions = status === null ? null : assignmentOf(status);
  const notReady: string[] = [];
  if (input.phase === 'starting') notReady.push('starting: connecting to its services');
  if (input.phase === 'stopping') notReady.push('stopping: draining');
  if (!liveness.ok) notReady.push(...liveness.reasons);
  if (partitions !== null && partitions.length === 0) notReady.push('holds no partition (yet)');
  return {
    live: { ok: liveness.ok, reasons: liveness.reasons },
    ready: { ok: notReady.length === 0, reasons: notReady },
    phase: input.phase,
    partitions,
    status,
  };
}

export interface HealthEndpoint {
  /** The port it listens on (HEALTH_PORT, or the one picked for port 0). */
  port: number;
  close(): Promise<void>;
}

/** Listens on `host:port`; rejects with a non-retriable CONFIG_INVALID when the port cannot be bound. */
export async function startHealthEndpoint(
  component: string,
  host: string,
  port: number,
  input: () => ComponentHealthInput,
): Promise<HealthEndpoint> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || !['/health', '/health/live', '/health/ready'].includes(path ?? '')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    const h = componentHealth(input());
    const body =
      path === '/health/live'
        ? { component, live: h.live.ok, reasons: h.live.reasons, uptime_seconds: Math.round(process.uptime()) }
        : path === '/health/ready'
          ? { component, ready: h.ready.ok, reasons: h.ready.reasons, phase: h.phase, partitions: h.partitions }
          : { component, ...h };
    const ok = path === '/health/live' ? h.live.ok : path === '/health/ready' ? h.ready.ok : h.live.ok && h.ready.ok;
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new PipelineError(
          'CONFIG_INVALID',
          `HEALTH_PORT=${port}: cannot listen on ${host}:${port}: ${errorMessage(err)}`,
          {
            cause: err,
          },
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
