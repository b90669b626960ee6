/**
 * compose.yaml brought up for real by `docker-compose` (Debian's, 1.29) against podman's
 * Docker-compatible API (`podman system service`), as compose.containers.ts does. Contracts:
 *
 * - `startPodmanService` serves the API on a socket under data/containers/ with the
 *   containers.conf of images.ts (runc, ulimits 16384); `stop()` ends that one process.
 * - `ComposeProject.run` runs `docker-compose -p <project> -f compose.yaml --env-file <file>
 *   --profile load …` with DOCKER_HOST at that socket; the env file is Compose's `.env` (written by
 *   the caller, never the repository's own `.env`).
 * - podman runs a container's health check only when a systemd timer asks it to (`podman
 *   healthcheck run`), and this machine has no systemd: without a timer every service stays
 *   `starting` and `depends_on: condition: service_healthy` never holds. `HealthTimer` is that
 *   timer: every 2 s it runs `podman healthcheck run` for each of the project's running
 *   containers with a health check whose interval has passed; podman itself applies the retries,
 *   start period and timeout compose.yaml gives (they are in the container's configuration).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ROOT, WORK, podman, podmanEnv } from './images.js';
import { waitFor } from '../helpers/wait.js';

export const COMPOSE_FILE = path.join(ROOT, 'compose.yaml');

const execFileAsync = promisify(execFile);
const run = (cmd: string, args: string[]) => execFileAsync(cmd, args, { env: podmanEnv(), encoding: 'utf8' });

export interface PodmanService {
  socket: string;
  stop: () => Promise<void>;
}

/** `podman system service --time=0 unix://<socket>`, until the socket exists (30 s). */
export async function startPodmanService(name: string): Promise<PodmanService> {
  const socket = path.join(WORK, `${name}.sock`);
  rmSync(socket, { force: true });
  // Its log (every health check says it finds no systemd) goes to a file beside the socket.
  const logFd = openSync(path.join(WORK, `${name}-service.log`), 'w');
  const child: ChildProcess = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], {
    env: podmanEnv(),
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  await waitFor('podman system service to listen', () => existsSync(socket), { timeoutMs: 30_000, everyMs: 200 });
  return {
    socket,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(socket, { force: true });
    },
  };
}

export interface ComposeResult {
  status: number;
  output: string;
}

export class ComposeProject {
  constructor(
    readonly project: string,
    private readonly service: PodmanService,
    private readonly envFile: string,
  ) {}

  /**
   * `docker-compose … <args>`; rejects with its output unless it exits 0 (or `allowFail`). Never
   * synchronous: `up` waits on health checks that the HealthTimer of this process runs.
   */
  async run(args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): Promise<ComposeResult> {
    const child = spawn(
      'docker-compose',
      ['-p', this.project, '-f', COMPOSE_FILE, '--env-file', this.envFile, '--profile', 'load', ...args],
      {
        cwd: ROOT,
        env: { ...podmanEnv(), DOCKER_HOST: `unix://${this.service.socket}`, COMPOSE_INTERACTIVE_NO_CLI: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timeoutMs = opts.timeoutMs ?? 600_000;
    const killer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    const status = await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    clearTimeout(killer);
    if (status !== 0 && !opts.allowFail) {
      throw new Error(`docker-compose ${args.join(' ')} exited ${status} (limit ${timeoutMs} ms):\n${output}`);
    }
    return { status, output };
  }

  /** The container of `service`, or undefined before it exists. */
  container(service: string): string | undefined {
    return this.containers().get(service);
  }

  /** Every container of the project, by service name (one each: nothing here is scaled). */
  containers(): Map<string, string> {
    const out = podman([
      'ps',
      '-a',
      '--filter',
      `label=com.docker.compose.project=${this.project}`,
      '--format',
      '{{.ID}} {{index .Labels "com.docker.compose.service"}}',
    ]).trim();
    const map = new Map<string, string>();
    for (const line of out === '' ? [] : out.split('\n')) {
      const [id, service] = line.split(' ');
      if (id && service) map.set(service, id);
    }
    return map;
  }

  /** A field of `podman inspect` (a Go template) for the container of `service`. */
  inspect(service: string, template: string): string {
    const id = this.container(service);
    if (!id) throw new Error(`no container for ${service}`);
    return podman(['inspect', id, '--format', template]).trim();
  }

  /** The container's address on the project's network (reachable from this host: rootful podman). */
  address(service: string): string {
    return this.inspect(service, '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}').split(' ')[0] ?? '';
  }

  /** A named volume's folder on this host. */
  volumePath(volume: string): string {
    return podman(['volume', 'inspect', `${this.project}_${volume}`, '--format', '{{.Mountpoint}}']).trim();
  }
}

/** A Go duration as podman prints it (`5s`, `1m0s`, `500ms`) in milliseconds; NaN if not one. */
export function durationMs(text: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 1e-6 };
  let total = 0;
  let rest = text.trim();
  if (rest === '' || rest === '0s') return rest === '0s' ? 0 : Number.NaN;
  while (rest !== '') {
    const m = /^(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/.exec(rest);
    if (!m) return Number.NaN;
    total += Number(m[1]) * (units[m[2] as string] ?? Number.NaN);
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** The systemd timer podman's health checks lack here (see the header). */
export class HealthTimer {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private readonly due = new Map<string, number>();
  /** Containers whose check runs now: as Docker does, a check never overlaps the previous one. */
  private readonly running = new Set<string>();
  /** The project's containers, listed again every 10 s (they change only when Compose acts). */
  private listed: { at: number; ids: Array<[string, string]> } = { at: 0, ids: [] };
  /** Each service's latest verdict (`healthy`, or what the failing check said), for the logs. */
  readonly status = new Map<string, string>();

  constructor(private readonly compose: ComposeProject) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      this.tick()
        .catch(() => undefined)
        .finally(() => (this.busy = false));
    }, 2000);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    if (Date.now() - this.listed.at > 10_000) this.listed = { at: Date.now(), ids: [...this.compose.containers()] };
    const ids = this.listed.ids;
    if (ids.length === 0) return;
    const { stdout } = await run('podman', [
      'inspect',
      ...ids.map(([, id]) => id),
      '--format',
      '{{.State.Status}} {{if .Config.Healthcheck}}{{index .Config.Healthcheck.Test 0}} {{.Config.Healthcheck.Interval}}{{end}}',
    ]);
    const lines = stdout.trim().split('\n');
    const now = Date.now();
    ids.forEach(([service, id], i) => {
      const [state, kind, interval] = (lines[i] ?? '').trim().split(' ');
      const every = durationMs(interval ?? '');
      if (
        state !== 'running' ||
        kind === 'NONE' ||
        !(every >= 0) ||
        this.running.has(id) ||
        (this.due.get(id) ?? 0) > now
      )
        return;
      this.running.add(id);
      // Not awaited: a check (Kafka's starts a JVM) may take seconds; the other containers' go on.
      // The next one is due an interval after this one ended, as Docker schedules them.
      run('podman', ['healthcheck', 'run', id])
        .then(
          () => this.status.set(service, 'healthy'),
          (err: { stdout?: string }) => this.status.set(service, err.stdout?.trim() || 'unhealthy'),
        )
        .finally(() => {
          this.running.delete(id);
          this.due.set(id, Date.now() + Math.max(1000, every || 30_000));
        });
    });
  }
}
