import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { PipelineError, errorMessage } from '../core/errors.js';
import { PRIVATE_DATABASE, type PrivatePorts } from '../config/load.js';
import {
  isAlive,
  portTakenMessage,
  runChecked,
  runCheckedAsync,
  spawnDetached,
  tcpOpen,
  waitUntil,
} from './process.js';
import type { ServiceState } from '../config/stack-state.js';

/**
 * PostgreSQL for the stack: a configured server is checked (reachable, `wal_level = logical`) and
 * never reconfigured; otherwise a private cluster is created from Debian's binaries under
 * `<stack>/postgres`, with logical WAL, on its own port. `sql/init.sql` is applied to a database
 * that has no `content` table yet.
 */

const PG_USER = 'postgres';

export function pgBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const found = versions.map((v) => path.join(root, v, 'bin')).find((d) => existsSync(path.join(d, 'initdb')));
  if (!found) {
    throw new PipelineError(
      'STACK_START_FAILED',
      'PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; install them with: apt-get install postgresql',
    );
  }
  return found;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function pgAnswers(url: string): Promise<boolean> {
  try {
    await query(url, 'SELECT 1');
    return true;
  } catch {
    return false;
  }
}

/** Checks a server the user configured; throws SERVICE_MISCONFIGURED with the exact fix. */
export async function checkExternalPostgres(url: string): Promise<void> {
  let rows: { wal_level: string }[];
  try {
    rows = await query<{ wal_level: string }>(url, 'SHOW wal_level');
  } catch (err) {
    throw new PipelineError(
      'SERVICE_UNREACHABLE',
      `PostgreSQL at DATABASE_URL (${redact(url)}) does not answer: ${errorMessage(err)}. Start it, fix DATABASE_URL, or unset DATABASE_URL to let \`engage stack up\` start a private PostgreSQL.`,
      { retriable: true },
    );
  }
  if (rows[0]?.wal_level !== 'logical') {
    throw new PipelineError(
      'SERVICE_MISCONFIGURED',
      `PostgreSQL at DATABASE_URL (${redact(url)}) has wal_level = ${rows[0]?.wal_level}; CDC needs logical. Fix: run \`ALTER SYSTEM SET wal_level = logical;\` as a superuser, then restart PostgreSQL (e.g. \`pg_ctlcluster 15 main restart\`). Or unset DATABASE_URL to use a private PostgreSQL.`,
    );
  }
}

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

function asPgUser(): string | undefined {
  return process.getuid?.() === 0 ? PG_USER : undefined;
}

/** Starts (creating on first use) the private cluster. Idempotent: a running cluster is reused. */
export async function startPrivatePostgres(
  stackDir: string,
  ports: PrivatePorts,
  previous: ServiceState | undefined,
): Promise<ServiceState> {
  const logDir = path.join(stackDir, 'postgres');
  const log = path.join(logDir, 'postgres.log');
  const port = ports.postgres;
  const url = `postgresql://postgres@127.0.0.1:${port}/${PRIVATE_DATABASE}`;
  const adminUrl = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  if (previous?.startedByStack && isAlive(previous.pid) && (await pgAnswers(adminUrl))) {
    return previous;
  }
  const bin = pgBinDir();
  const user = asPgUser();
  mkdirSync(logDir, { recursive: true });
  const dir = clusterDir(stackDir, user, previous);
  const dataDir = path.join(dir, 'data');
  if (await tcpOpen('127.0.0.1', port)) {
    // This cluster's own server, still running though the state lost track of it, is adopted;
    // anything else on the port is not ours to use (nor to apply the schema to).
    const running = postmasterPid(dataDir);
    if (running !== undefined && isAlive(running) && (await pgAnswers(adminUrl)))
      return { url, startedByStack: true, pid: running, log, dataDir };
    throw new PipelineError(
      'STACK_START_FAILED',
      portTakenMessage(port, 'PostgreSQL', 'Stop it, set DATABASE_URL to use it'),
    );
  }
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await runCheckedAsync(
      path.join(bin, 'initdb'),
      ['-D', dataDir, '-U', PG_USER, '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8'],
      `initdb (log: ${log})`,
      { asUser: user },
    );
    writeFileSync(
      path.join(dataDir, 'postgresql.auto.conf'),
      [
        `port = ${port}`,
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = '${dir}'`,
        'wal_level = logical',
        'max_replication_slots = 20',
        'max_wal_senders = 20',
        'max_connections = 200',
        'shared_buffers = 256MB',
        'synchronous_commit = on',
        `logical_decoding_work_mem = '64MB'`,
        '',
      ].join('\n'),
    );
    if (user) chownSync(path.join(dataDir, 'postgresql.auto.conf'), uidOf(user), gidOf(user));
  }
  // Port, address and socket folder on the command line: they win over the cluster's own files, so a
  // cluster created by an older version (other ports) starts where this one expects it.
  const serverArgs = [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${dir}`,
  ];
  const pid = spawnDetached(path.join(bin, 'postgres'), serverArgs, log, { asUser: user });
  await waitUntil('PostgreSQL (private)', () => pgAnswers(adminUrl), {
    timeoutMs: 60000,
    log,
    alive: () => isAlive(pid),
  });
  const exists = await query<{ n: number }>(
    adminUrl,
    `SELECT count(*)::int AS n FROM pg_database WHERE datname = '${PRIVATE_DATABASE}'`,
  );
  if (exists[0]?.n === 0) await query(adminUrl, `CREATE DATABASE ${PRIVATE_DATABASE}`);
  return { url, startedByStack: true, pid: postmasterPid(dataDir) ?? pid, log, dataDir };
}

/** The world-traversable folder a stack's cluster falls back to (see clusterDir); it may not exist. */
export function fallbackRoot(stackDir: string): string {
  const base = existsSync('/var/tmp') ? '/var/tmp' : os.tmpdir();
  return path.join(
    base,
    `engage-stack-${createHash('sha1').update(path.resolve(stackDir)).digest('hex').slice(0, 12)}`,
  );
}

/**
 * Where the cluster (data directory and socket) lives: `<stack>/postgres`, unless the server's
 * user cannot write there — root running the stack from a directory `postgres` cannot traverse,
 * e.g. a clone under a 0700 temporary directory, where initdb would fail. Then it lives under
 * /var/tmp (world-traversable), in a directory keyed by the stack folder's path, so the same stack
 * folder always finds the same cluster. A cluster recorded in the state is reused as it is.
 */
export function clusterDir(stackDir: string, user: string | undefined, previous?: ServiceState): string {
  if (previous?.dataDir && existsSync(path.join(previous.dataDir, 'PG_VERSION'))) return path.dirname(previous.dataDir);
  const dir = path.join(stackDir, 'postgres');
  mkdirSync(dir, { recursive: true });
  if (!user) return dir;
  const uid = uidOf(user);
  const gid = gidOf(user);
  chownSync(dir, uid, gid);
  if (spawnSync('runuser', ['-u', user, '--', 'test', '-w', dir]).status === 0) return dir;
  const root = fallbackRoot(stackDir);
  const fallback = path.join(root, 'postgres');
  mkdirSync(fallback, { recursive: true });
  chmodSync(root, 0o755);
  chownSync(fallback, uid, gid);
  chmodSync(fallback, 0o700);
  return fallback;
}

/** Applies `sql/init.sql` when the database has no `content` table yet. Returns whether it did. */
export async function applySchemaIfMissing(url: string, initSqlPath: string): Promise<boolean> {
  const rows = await query<{ t: string | null }>(url, `SELECT to_regclass('public.content')::text AS t`);
  if (rows[0]?.t) return false;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(readFileSync(initSqlPath, 'utf8'));
  } finally {
    await client.end();
  }
  return true;
}

export async function stopPrivatePostgres(service: ServiceState): Promise<void> {
  if (!service.dataDir || !existsSync(path.join(service.dataDir, 'postmaster.pid'))) return;
  await runCheckedAsync(
    path.join(pgBinDir(), 'pg_ctl'),
    ['-D', service.dataDir, 'stop', '-m', 'fast', '-w'],
    'pg_ctl stop',
    { asUser: asPgUser() },
  );
}

function postmasterPid(dataDir: string): number | undefined {
  const file = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function uidOf(user: string): number {
  return Number(runChecked('id', ['-u', user], `id -u ${user}`).trim());
}

function gidOf(user: string): number {
  return Number(runChecked('id', ['-g', user], `id -g ${user}`).trim());
}
