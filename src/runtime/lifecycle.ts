import type { Config } from '../config/load.js';
import { createLogger, type Logger } from '../core/logger.js';
import { exitProcess } from '../core/exit.js';
import { enableDefaultMetrics } from '../core/metrics.js';
import { startHealthEndpoint, type ComponentPhase, type HealthEndpoint } from './health-endpoint.js';
import { startHeartbeat, type HeartbeatHandle } from './heartbeat.js';

/**
 * How every long-running command (`engage cdc`, `process`, `sink …`, `api`, `external-receiver`)
 * lives: start, publish a heartbeat, then on SIGINT/SIGTERM drain and stop once (a second signal
 * exits at once). `start` returns when the component is running; `stop` must drain and commit.
 * Started by `engage run` (SUPERVISOR_PID set), it also drains and stops once that process is gone
 * (killed without the chance to stop its components: they would otherwise hold the replication
 * slot and the consumer groups of the next run). With HEALTH_PORT set it serves its own health
 * endpoint (health-endpoint.ts) from before `start` until it has stopped.
 */

export interface RunningComponent {
  /** Drains in-flight work, commits, releases resources. Called once. */
  stop(): Promise<void>;
  /** State published in the heartbeat (lag, circuit state…); cheap and synchronous. */
  status?(): Record<string, unknown>;
  /** Resolves if the component ends on its own (e.g. a finite backfill); rejects on a fatal error. */
  done?: Promise<void>;
}

export interface ComponentContext {
  config: Config;
  log: Logger;
  /** Aborted when the process is asked to stop. */
  signal: AbortSignal;
}

const ORPHAN_CHECK_MS = 1000;

/** Whether a process with this pid exists (one of another user's counts: EPERM). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function runComponent(
  name: string,
  config: Config,
  start: (ctx: ComponentContext) => Promise<RunningComponent>,
): Promise<void> {
  const log = createLogger(config.LOG_LEVEL, `engage-${name}`);
  enableDefaultMetrics(name);
  const abort = new AbortController();
  let component: RunningComponent | undefined;
  let stopping: Promise<void> | undefined;
  let heartbeat: HeartbeatHandle | undefined;
  let phase: ComponentPhase = 'starting';
  let health: HealthEndpoint | undefined;
  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ reason }, `${name} stopping`);
      phase = 'stopping';
      abort.abort(new Error(reason));
      await component?.stop();
      await heartbeat?.stop();
      await health?.close();
      log.info(`${name} stopped`);
    })();
    return stopping;
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${sig} again: exiting without draining`);
      // SIGKILL, not process.exit: native Kafka clients can hold exit up while they close.
      process.kill(process.pid, 'SIGKILL');
    }
    void stop(sig).then(
      () => exitProcess(0),
      (err: unknown) => {
        log.error({ err }, `${name} failed to stop cleanly`);
        exitProcess(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const supervisor = config.SUPERVISOR_PID;
  if (supervisor !== undefined) {
    // process.ppid is read once at start in Node 20, so ask the kernel whether the pid still exists.
    const watch = setInterval(() => {
      if (processAlive(supervisor)) return;
      clearInterval(watch);
      log.warn({ supervisor }, 'the supervising engage run is gone; stopping');
      onSignal('SIGTERM');
    }, ORPHAN_CHECK_MS);
    watch.unref();
  }
  if (config.HEALTH_PORT !== undefined) {
    health = await startHealthEndpoint(name, config.HEALTH_HOST, config.HEALTH_PORT, () => ({
      phase,
      status: () => component?.status?.() ?? {},
    }));
    log.info({ host: config.HEALTH_HOST, port: health.port }, `${name} health endpoint listening`);
  }
  try {
    component = await start({ config, log, signal: abort.signal });
  } catch (err) {
    await health?.close();
    throw err;
  }
  if (phase === 'starting') phase = 'running';
  // Published once started: a heartbeat says the component is running, with its status.
  heartbeat = startHeartbeat(config, name, () => component?.status?.() ?? {});
  log.info(`${name} running`);
  if (component.done) {
    let outcome = 'failed';
    try {
      await component.done;
      outcome = 'finished';
    } finally {
      await stop(outcome);
    }
  } else {
    await new Promise<void>((resolve) => abort.signal.addEventListener('abort', () => resolve(), { once: true }));
    await stopping;
  }
}
