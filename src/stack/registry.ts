import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { PipelineError } from '../core/errors.js';
import { PRIVATE_REGISTRY_PATH, type PrivatePorts } from '../config/load.js';
import type { ServiceState } from '../config/stack-state.js';
import { redact } from './postgres.js';
import { isAlive, portTakenMessage, runCheckedAsync, spawnDetached, stopPid, tcpOpen, waitUntil } from './process.js';

/**
 * The stack's schema registry: Apicurio Registry (its Confluent-compatible API at
 * PRIVATE_REGISTRY_PATH), the runnable distribution that `stack/registry-pom.xml` pins, fetched by
 * Maven and unpacked once per version of that file into the stack folder. It keeps its schemas in a
 * file-based H2 database in `<STACK_DIR>/registry/data`, so a `stack down` / `stack up` keeps the
 * subjects and their ids. A registry given by SCHEMA_REGISTRY_URL is only checked.
 */

/** The private registry's JVM heap: Apicurio idles at ~250 MB RSS with it, beside Kafka on 2 cores. */
export const REGISTRY_HEAP = '384m';

/**
 * Whether a Confluent-compatible registry answers at `url` (its API root, e.g. `…/apis/ccompat/v7`):
 * `GET <url>/subjects` succeeds. `basicAuth` is SCHEMA_REGISTRY_BASIC_AUTH (`user:password`).
 */
export async function registryAnswers(url: string, basicAuth?: string): Promise<boolean> {
  try {
    const headers: Record<string, string> = basicAuth
      ? { authorization: `Basic ${Buffer.from(basicAuth).toString('base64')}` }
      : {};
    const res = await fetch(`${url.replace(/\/$/, '')}/subjects`, { headers, signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Refuses a SCHEMA_REGISTRY_URL that does not answer, naming the ways out. */
export async function checkExternalRegistry(url: string, basicAuth?: string): Promise<void> {
  if (await registryAnswers(url, basicAuth)) return;
  throw new PipelineError(
    'SERVICE_UNREACHABLE',
    `the schema registry at SCHEMA_REGISTRY_URL (${redact(url)}) does not answer \`GET ${redact(url).replace(/\/$/, '')}/subjects\`${basicAuth ? ' with SCHEMA_REGISTRY_BASIC_AUTH' : ''}. Start it, fix SCHEMA_REGISTRY_URL (a Confluent-compatible API root, e.g. Apicurio's …/apis/ccompat/v7), or unset it to let \`engage stack up\` start a private registry.`,
    { retriable: true },
  );
}

/**
 * The unpacked distribution's folder (holding `apicurio-registry-app-<v>-runner.jar` and `lib/`),
 * keyed by the pom's content: Maven copies the tarball (from its local repository when it is
 * there, so a second stack needs no network), `tar` unpacks it, and a rename makes it whole or absent.
 */
export async function registryDistribution(stackDir: string, repoRoot: string): Promise<string> {
  const pom = path.join(repoRoot, 'stack', 'registry-pom.xml');
  const text = readFileSync(pom, 'utf8');
  const hash = createHash('sha1').update(text).digest('hex').slice(0, 12);
  const dist = path.join(stackDir, 'registry', `dist-${hash}`);
  if (existsSync(dist)) return dist;
  // Per process: two `stack up` on one stack folder (two test runs) may unpack at the same time.
  const work = `${dist}.partial-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  await runCheckedAsync(
    'mvn',
    ['-q', '-B', '-f', pom, 'dependency:copy', `-Dregistry.dir=${work}`],
    'Fetching the schema registry (Apicurio, ~110 MB) with Maven (needs Maven Central once)',
  );
  const tarball = path.join(work, `apicurio-registry-app-${registryVersion(text)}-all.tar.gz`);
  await runCheckedAsync('tar', ['-xzf', tarball, '-C', work], `Unpacking ${tarball}`);
  rmSync(tarball);
  rmSync(path.join(work, 'maven-target'), { recursive: true, force: true });
  try {
    renameSync(work, dist);
  } catch (err) {
    // The other one renamed first: its copy is as good.
    if (!existsSync(dist)) throw err;
    rmSync(work, { recursive: true, force: true });
  }
  return dist;
}

function registryVersion(pomText: string): string {
  const version = /<apicurio\.version>([^<]+)<\/apicurio\.version>/.exec(pomText)?.[1];
  if (!version) throw new PipelineError('STACK_START_FAILED', 'stack/registry-pom.xml names no apicurio.version');
  return version;
}

/** The JVM's arguments: heap bounded, loopback only, no access log, schemas in a file-based H2. */
export function registryJavaArgs(dist: string, port: number, dataDir: string): string[] {
  return [
    `-Xmx${REGISTRY_HEAP}`,
    '-XX:+UseG1GC',
    '-XX:ActiveProcessorCount=2',
    '-Djava.awt.headless=true',
    `-Dquarkus.http.port=${port}`,
    '-Dquarkus.http.host=127.0.0.1',
    // Every request at INFO otherwise (the serdes' lookups included): the log would grow without end.
    '-Dquarkus.http.access-log.enabled=false',
    `-Dapicurio.datasource.url=jdbc:h2:file:${path.join(dataDir, 'registry')}`,
    // Apicurio's default pool keeps 20 connections open: a handful serves a local pipeline.
    '-Dapicurio.datasource.jdbc.initial-size=2',
    '-Dapicurio.datasource.jdbc.min-size=2',
    '-Dapicurio.datasource.jdbc.max-size=20',
    `-Djava.io.tmpdir=${path.dirname(dataDir)}`,
    '-jar',
    runnerJar(dist),
  ];
}

/** The distribution's runner jar (`apicurio-registry-app-<version>-runner.jar`). */
function runnerJar(dist: string): string {
  const jar = readdirSync(dist).find((f) => f.endsWith('-runner.jar'));
  if (!jar)
    throw new PipelineError('STACK_START_FAILED', `no *-runner.jar in ${dist}: remove that folder to unpack it again`);
  return path.join(dist, jar);
}

/**
 * Starts the private registry (fetching and unpacking it on first use) unless the one a previous
 * `up` started still answers, and waits until its Confluent-compatible API lists subjects.
 */
export async function startPrivateRegistry(
  stackDir: string,
  repoRoot: string,
  ports: PrivatePorts,
  previous: ServiceState | undefined,
): Promise<ServiceState> {
  const dir = path.join(stackDir, 'registry');
  const dataDir = path.join(dir, 'data');
  const log = path.join(dir, 'registry.log');
  const port = ports.registry;
  const url = `http://127.0.0.1:${port}${PRIVATE_REGISTRY_PATH}`;
  if (previous?.startedByStack && isAlive(previous.pid) && (await registryAnswers(url))) return previous;
  if (await tcpOpen('127.0.0.1', port)) {
    throw new PipelineError(
      'STACK_START_FAILED',
      portTakenMessage(port, 'schema registry', 'Stop it, set SCHEMA_REGISTRY_URL to use a registry of your own'),
    );
  }
  const dist = await registryDistribution(stackDir, repoRoot);
  mkdirSync(dataDir, { recursive: true });
  const pid = spawnDetached('java', registryJavaArgs(dist, port, dataDir), log, { cwd: dir });
  try {
    // 4–9 s on 2 cores (JVM start and Quarkus boot); far longer when the machine is loaded.
    await waitUntil('Schema registry (private)', () => registryAnswers(url), {
      timeoutMs: 120000,
      log,
      alive: () => isAlive(pid),
    });
  } catch (err) {
    // Not ready in time: stopped, so that no registry the state file does not name holds the port.
    await stopPid(pid, 15000);
    throw err;
  }
  return { url, startedByStack: true, pid, log, dataDir };
}
