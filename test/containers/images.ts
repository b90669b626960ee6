/**
 * The images `npm run test:containers` runs (pipeline.containers.ts), built here with podman: no
 * image registry is reachable from this project's machines, so the base image is a local stand-in
 * for the official `node:20-bookworm-slim` — Debian bookworm minbase from debootstrap, this
 * machine's Node 20 and npm copied in, and its CA bundle (an intercepting proxy's certificate may be
 * in it) for npm — and the engage image is the repository's Dockerfile built on it. Podman runs
 * with `--runtime runc` and ulimits of 16384 (../shared/notes/environment-probes.md), through a
 * containers.conf of its own under data/containers/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const WORK = path.join(ROOT, 'data', 'containers');
export const BASE_IMAGE = 'localhost/node:20-bookworm-slim';
export const DEBIAN_IMAGE = 'localhost/debian:bookworm';
export const ENGAGE_IMAGE = process.env.ENGAGE_TEST_IMAGE ?? 'localhost/engagement-pipeline:test';

/** podman's environment: the containers.conf that makes it run here. */
export function podmanEnv(): NodeJS.ProcessEnv {
  const conf = path.join(WORK, 'containers.conf');
  if (!existsSync(conf)) {
    mkdirSync(WORK, { recursive: true });
    writeFileSync(
      conf,
      [
        '[containers]',
        'default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]',
        '[engine]',
        'runtime = "runc"',
        'cgroup_manager = "cgroupfs"',
        '',
      ].join('\n'),
    );
  }
  return { ...process.env, CONTAINERS_CONF: conf };
}

const INSTALL = 'apt-get install -y --no-install-recommends podman runc debootstrap docker-compose';

/**
 * Throws, saying what to install, unless every one of `tools` is on the PATH: these tests take
 * Debian's podman, runc, debootstrap and docker-compose from the host (docs/operations.md).
 */
export function requireTools(tools: readonly string[]): void {
  const missing = tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length > 0)
    throw new Error(`npm run test:containers needs ${missing.join(', ')} on this machine: ${INSTALL}`);
}

/** Runs podman; throws with its stderr when it fails. */
export function podman(args: string[], opts: { inherit?: boolean } = {}): string {
  const res = spawnSync('podman', args, {
    env: podmanEnv(),
    encoding: 'utf8',
    stdio: opts.inherit ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.error) throw new Error(`podman: ${res.error.message} (${INSTALL})`);
  if (res.status !== 0) throw new Error(`podman ${args.join(' ')} exited ${res.status}: ${res.stderr ?? ''}`);
  return res.stdout ?? '';
}

/** A container's last lines of output, stdout and stderr together (the components log to stderr). */
export function containerLogs(id: string, lines: number): string {
  const res = spawnSync('podman', ['logs', '--tail', String(lines), id], { env: podmanEnv(), encoding: 'utf8' });
  return `${res.stdout ?? ''}${res.stderr ?? ''}`;
}

export function imageExists(name: string): boolean {
  return spawnSync('podman', ['image', 'exists', name], { env: podmanEnv() }).status === 0;
}

/** Debian bookworm minbase from debootstrap into `rootfs` (about 2–4 minutes here). */
function debootstrap(rootfs: string, log: (line: string) => void): void {
  requireTools(['debootstrap']);
  rmSync(rootfs, { recursive: true, force: true });
  log(`debootstrap bookworm into ${rootfs}`);
  execFileSync('debootstrap', ['--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  rmSync(path.join(rootfs, 'var/cache/apt/archives'), { recursive: true, force: true });
}

/** Imports the folder `rootfs` as the image `name`, with Containerfile instructions `changes`. */
function importRootfs(rootfs: string, name: string, changes: string[], log: (line: string) => void): void {
  log(`importing ${name}`);
  const flags = changes.map((c) => `--change '${c}'`).join(' ');
  execFileSync('sh', ['-c', `tar -C "${rootfs}" -c . | podman import ${flags} - ${name}`], {
    env: podmanEnv(),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** Plain Debian bookworm minbase, the base of the service stand-ins (standins.ts), made once. */
export function ensureDebianImage(log: (line: string) => void): void {
  requireTools(['podman', 'runc']);
  if (imageExists(DEBIAN_IMAGE)) return;
  const rootfs = path.join(WORK, 'rootfs-debian');
  debootstrap(rootfs, log);
  importRootfs(rootfs, DEBIAN_IMAGE, ['CMD ["bash"]'], log);
  rmSync(rootfs, { recursive: true, force: true });
}

/** The local stand-in for node:20-bookworm-slim, made once (debootstrap: 2–4 minutes). */
export function ensureBaseImage(log: (line: string) => void): void {
  requireTools(['podman', 'runc']);
  if (imageExists(BASE_IMAGE)) return;
  const rootfs = path.join(WORK, 'rootfs');
  debootstrap(rootfs, log);
  // Node and npm as this machine has them (Node: the nodejs package's files; npm: its folder).
  const files = execFileSync('dpkg', ['-L', 'nodejs'], { encoding: 'utf8' }).split('\n');
  for (const f of files.filter((f) => f.startsWith('/usr/bin/node') || f.startsWith('/usr/include/node/'))) {
    if (!existsSync(f)) continue;
    mkdirSync(path.dirname(path.join(rootfs, f)), { recursive: true });
    cpSync(f, path.join(rootfs, f), { recursive: true, verbatimSymlinks: true });
  }
  cpSync('/usr/lib/node_modules/npm', path.join(rootfs, 'usr/lib/node_modules/npm'), { recursive: true });
  execFileSync('ln', ['-sf', '../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/bin/npm')]);
  execFileSync('ln', ['-sf', '../lib/node_modules/npm/bin/npx-cli.js', path.join(rootfs, 'usr/bin/npx')]);
  mkdirSync(path.join(rootfs, 'etc/ssl'), { recursive: true });
  copyFileSync('/etc/ssl/certs/ca-certificates.crt', path.join(rootfs, 'etc/ssl/host-ca.crt'));
  importRootfs(
    rootfs,
    BASE_IMAGE,
    [
      'CMD ["node"]',
      'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/host-ca.crt',
      'ENV npm_config_cafile=/etc/ssl/host-ca.crt',
      'ENV npm_config_nodedir=/usr',
    ],
    log,
  );
  rmSync(rootfs, { recursive: true, force: true });
}

/** Builds the repository's Dockerfile on the local base (cached layers are reused). */
export function buildEngageImage(log: (line: string) => void): void {
  if (process.env.ENGAGE_TEST_SKIP_BUILD === '1' && imageExists(ENGAGE_IMAGE)) return;
  log(
    `podman build -t ${ENGAGE_IMAGE} (the first build compiles the native Kafka client: 3.5 min on 2026-12-08, up to 15 min seen on slower days)`,
  );
  // ENGAGE_TEST_CONTEXT: another build context, e.g. a `git archive` of a commit.
  const context = process.env.ENGAGE_TEST_CONTEXT ?? ROOT;
  podman(['build', '--build-arg', `NODE_IMAGE=${BASE_IMAGE}`, '-t', ENGAGE_IMAGE, context], { inherit: true });
}
