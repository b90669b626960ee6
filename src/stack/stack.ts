import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { privateUrls, type Config } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import { ensureTopics, kafkaReady } from '../kafka/admin.js';
import { clusterBrokers } from '../kafka/cluster.js';
import {
  applySchemaIfMissing,
  checkExternalPostgres,
  fallbackRoot,
  pgAnswers,
  redact,
  startPrivatePostgres,
  stopPrivatePostgres,
} from './postgres.js';
import { kafkaAnswers, startPrivateKafka } from './kafka.js';
import { clusterUrl, formattedBrokers } from './kafka-nodes.js';
import { redisAnswers, startPrivateRedis } from './redis.js';
import { checkExternalRegistry, registryAnswers, startPrivateRegistry } from './registry.js';
import { isAlive, stopPid } from './process.js';
import {
  SERVICE_NAMES,
  readStackState,
  updateService,
  type ServiceName,
  type ServiceState,
  type StackState,
} from '../config/stack-state.js';
import { formatPiiKeys } from '../config/pii-keys.js';

/**
 * `engage stack up | down | status | env`. A service whose URL the user set is checked and used as
 * given; a service left unset is started privately under the stack folder, and so is one whose URL
 * is the address at which the stack started its own (as `eval "$(engage stack env)"` exports it):
 * restarted when it died. `up` is idempotent and returns only when every service answers; `down`
 * stops only what the stack started.
 */

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const INIT_SQL = path.join(REPO_ROOT, 'sql', 'init.sql');

export interface ServiceStatus {
  name: ServiceName;
  url: string;
  startedByStack: boolean;
  up: boolean;
  log?: string;
  /** A private Kafka cluster's nodes, each with whether its Kafka port answers. */
  nodes?: Array<{ id: number; url: string; pid: number; log: string; up: boolean }>;
}

export interface UpOptions {
  /** Called as each service becomes ready (progress for the CLI). */
  onReady?: (status: ServiceStatus, ms: number) => void;
  /** Create the pipeline's topics once Kafka answers (default true). */
  topics?: boolean;
  /** Nodes of the private Kafka (`--kafka-brokers`); unset: kafkaBrokerCount's choice. */
  kafkaBrokers?: number;
}

/**
 * How many nodes the private Kafka has: the option, else STACK_KAFKA_BROKERS, else what the stack's
 * storage was formatted for, else 1.
 */
export function kafkaBrokerCount(config: Config, option?: number): number {
  return option ?? config.STACK_KAFKA_BROKERS ?? formattedBrokers(config.stackDir) ?? 1;
}

export async function stackUp(config: Config, opts: UpOptions = {}): Promise<ServiceStatus[]> {
  const state = readStackState(config.stackDir);
  const own = ownedServices(config, state);
  /**
   * Records the service and tells the caller it is ready. A service the stack started keeps its
   * record whatever the environment points at: replaced (e.g. by its own address exported with
   * `engage stack env`), `stack down` would leave it running and the next `stack up` would find
   * its port taken. One the stack (re)started is recorded as started, at the stack's address.
   */
  const report = (name: ServiceName, s: ServiceState, t0: number) => {
    if (own.has(name)) updateService(config.stackDir, name, s);
    else if (!(config.origins[name] === 'env' && state?.services[name]?.startedByStack))
      updateService(config.stackDir, name, s);
    opts.onReady?.({ name, url: s.url, startedByStack: s.startedByStack, up: true, log: s.log }, Date.now() - t0);
  };
  /** A service given by the environment: the stack's own (at the environment's URL) when it is the same server. */
  const fromEnv = (name: ServiceName, url: string): ServiceState => {
    const own = state?.services[name];
    return own?.startedByStack && sameEndpoint(name, own.url, url) ? { ...own, url } : { url, startedByStack: false };
  };
  // Redis, PostgreSQL and the registry start while Kafka's JVM warms up: the four are independent.
  const pgTask = (async () => {
    const t0 = Date.now();
    let s: ServiceState;
    if (config.origins.postgres === 'env' && !own.has('postgres')) {
      await checkExternalPostgres(config.databaseUrl);
      s = fromEnv('postgres', config.databaseUrl);
    } else {
      s = await startPrivatePostgres(config.stackDir, config.ports, state?.services.postgres);
    }
    // The environment's URL may name another database on the stack's server: that is the one used.
    await applySchemaIfMissing(config.origins.postgres === 'env' ? config.databaseUrl : s.url, INIT_SQL);
    report('postgres', s, t0);
  })();
  const redisTask = (async () => {
    const t0 = Date.now();
    let s: ServiceState;
    if (config.origins.redis === 'env' && !own.has('redis')) {
      if (!(await redisAnswers(config.redisUrl))) {
        throw new PipelineError(
          'SERVICE_UNREACHABLE',
          `Redis at REDIS_URL (${redact(config.redisUrl)}) does not answer. Start it, fix REDIS_URL, or unset it to let \`engage stack up\` start a private Redis.`,
          { retriable: true },
        );
      }
      s = fromEnv('redis', config.redisUrl);
    } else {
      s = await startPrivateRedis(config.stackDir, config.ports, state?.services.redis);
    }
    report('redis', s, t0);
  })();
  const kafkaTask = (async () => {
    const t0 = Date.now();
    let s: ServiceState;
    const brokers = config.kafkaBrokers.join(',');
    if (config.origins.kafka === 'env' && !own.has('kafka')) {
      if (!(await kafkaReady(config))) {
        throw new PipelineError(
          'SERVICE_UNREACHABLE',
          `Kafka at KAFKA_BOOTSTRAP_SERVERS (${brokers}) does not answer. Start it, fix KAFKA_BOOTSTRAP_SERVERS, or unset it to let \`engage stack up\` start a private broker.`,
          { retriable: true },
        );
      }
      s = fromEnv('kafka', brokers);
    } else {
      s = await startPrivateKafka({
        stackDir: config.stackDir,
        repoRoot: REPO_ROOT,
        ports: config.ports,
        heap: config.STACK_KAFKA_HEAP,
        brokers: kafkaBrokerCount(config, opts.kafkaBrokers),
        previous: state?.services.kafka,
        ready: (url) => kafkaReady({ kafkaBrokers: url.split(',') }),
        brokersSeen: async (url) => (await clusterBrokers({ kafkaBrokers: url.split(',') }, 5000)).length,
      });
    }
    // The private broker's listener is plaintext; a broker from the environment takes the configured security.
    if (opts.topics !== false)
      await ensureTopics(
        config,
        config.origins.kafka === 'env' && !own.has('kafka') ? config : { kafkaBrokers: s.url.split(',') },
      );
    report('kafka', s, t0);
  })();
  const registryTask = (async () => {
    const t0 = Date.now();
    let s: ServiceState;
    if (config.origins.registry === 'env' && !own.has('registry')) {
      await checkExternalRegistry(config.schemaRegistryUrl, config.SCHEMA_REGISTRY_BASIC_AUTH);
      s = fromEnv('registry', config.schemaRegistryUrl);
    } else {
      s = await startPrivateRegistry(config.stackDir, REPO_ROOT, config.ports, state?.services.registry);
    }
    report('registry', s, t0);
  })();
  const results = await Promise.allSettled([pgTask, redisTask, kafkaTask, registryTask]);
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  // One failing service keeps its own code (SERVICE_MISCONFIGURED, SERVICE_UNREACHABLE…).
  if (failed.length === 1 && failed[0]?.reason instanceof PipelineError) throw failed[0].reason;
  if (failed.length > 0) {
    const messages = failed.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason)));
    throw new PipelineError('STACK_START_FAILED', messages.join('\n\n'), { cause: failed[0]?.reason });
  }
  return stackStatus(config);
}

/**
 * The services the environment names at the address where the stack started its own (its state
 * file says so, and the address is the stack's private one for STACK_PORT_OFFSET, where a restart
 * would bind): `stack up` treats them as private, so a dead one is restarted rather than refused
 * as unreachable. A service the environment names elsewhere is the user's, and stays so.
 */
export function ownedServices(config: Config, state: StackState | null): Set<ServiceName> {
  const priv = privateUrls(config.STACK_PORT_OFFSET);
  const configured: Record<ServiceName, string> = {
    postgres: config.databaseUrl,
    kafka: config.kafkaBrokers.join(','),
    redis: config.redisUrl,
    registry: config.schemaRegistryUrl,
  };
  const privateAt: Record<ServiceName, string> = {
    postgres: priv.databaseUrl,
    // The stack's own cluster: every node's address (one node: the Kafka port).
    kafka: clusterUrl(config.ports, state?.services.kafka?.nodes?.length ?? 1),
    redis: priv.redisUrl,
    registry: priv.schemaRegistryUrl,
  };
  const owned = new Set<ServiceName>();
  for (const name of SERVICE_NAMES) {
    const record = state?.services[name];
    if (config.origins[name] !== 'env' || !record?.startedByStack) continue;
    if (sameEndpoint(name, record.url, configured[name]) && sameEndpoint(name, privateAt[name], configured[name]))
      owned.add(name);
  }
  return owned;
}

/** Whether two addresses of a service reach the same server (host and port; a database or Redis db number aside). */
export function sameEndpoint(name: ServiceName, a: string, b: string): boolean {
  const key = (url: string): string => {
    if (name === 'kafka')
      return url
        .split(',')
        .map((h) => h.trim())
        .sort()
        .join(',');
    try {
      return new URL(url).host;
    } catch {
      return url;
    }
  };
  return key(a) === key(b);
}

export async function stackStatus(config: Config): Promise<ServiceStatus[]> {
  const state = readStackState(config.stackDir);
  const urls: Record<ServiceName, string> = {
    postgres: config.databaseUrl,
    kafka: config.kafkaBrokers.join(','),
    redis: config.redisUrl,
    registry: config.schemaRegistryUrl,
  };
  return Promise.all(
    SERVICE_NAMES.map(async (name) => {
      const s = state?.services[name];
      const url = s?.url ?? urls[name];
      const up =
        name === 'postgres'
          ? await pgAnswers(url)
          : name === 'redis'
            ? await redisAnswers(url)
            : name === 'registry'
              ? await registryAnswers(
                  url,
                  config.origins.registry === 'env' ? config.SCHEMA_REGISTRY_BASIC_AUTH : undefined,
                )
              : await kafkaUp(url, config.ports.kafka);
      const nodes = s?.nodes
        ? await Promise.all(
            s.nodes.map(async ({ id, url, pid, log }) => ({
              id,
              url,
              pid,
              log,
              up: await kafkaUp(url, config.ports.kafka),
            })),
          )
        : undefined;
      return { name, url, startedByStack: s?.startedByStack ?? false, up, log: s?.log, ...(nodes ? { nodes } : {}) };
    }),
  );
}

/** Every address of the list answers (a private cluster is up when all its nodes are). */
async function kafkaUp(url: string, fallbackPort: number): Promise<boolean> {
  const up = await Promise.all(
    url.split(',').map((b) => {
      const [host, port] = b.trim().split(':');
      return kafkaAnswers(host || '127.0.0.1', Number(port ?? fallbackPort));
    }),
  );
  return up.every(Boolean);
}

/** Stops, in reverse dependency order, only the services the stack started. */
export async function stackDown(config: Config, onStopped?: (name: ServiceName) => void): Promise<void> {
  const state = readStackState(config.stackDir);
  if (!state) return;
  for (const name of ['registry', 'kafka', 'redis', 'postgres'] as const) {
    const s = state.services[name];
    if (!s) continue;
    if (s.startedByStack) {
      if (name === 'postgres') await stopPrivatePostgres(s);
      // A Kafka cluster's nodes stop together (each flushes and leaves; none waits for another).
      const pids = s.nodes ? s.nodes.map((n) => n.pid) : s.pid ? [s.pid] : [];
      await Promise.all(pids.filter(isAlive).map((pid) => stopPid(pid, name === 'kafka' ? 30000 : 15000)));
      onStopped?.(name);
    }
    updateService(config.stackDir, name, null);
  }
}

/**
 * For throwaway stacks (tests, benches): stops the stack, then deletes everything it wrote — the
 * stack folder and, when PostgreSQL had to run from its fallback folder (postgres.ts clusterDir),
 * that folder too. Never used on a user's stack (`engage stack down` keeps the data).
 */
export async function stackRemove(config: Config): Promise<void> {
  await stackDown(config).catch(() => undefined);
  rmSync(fallbackRoot(config.stackDir), { recursive: true, force: true });
  rmSync(config.stackDir, { recursive: true, force: true });
}

/** Shell `export` lines for the resolved addresses (for psql, redis-cli, kcat…), and the development pseudonym key. */
export function stackEnv(config: Config): string {
  const state = readStackState(config.stackDir);
  const pgUrl = state?.services.postgres?.url ?? config.databaseUrl;
  const lines = [
    `export DATABASE_URL='${pgUrl}'`,
    `export KAFKA_BOOTSTRAP_SERVERS='${state?.services.kafka?.url ?? config.kafkaBrokers.join(',')}'`,
    `export REDIS_URL='${state?.services.redis?.url ?? config.redisUrl}'`,
    `export SCHEMA_REGISTRY_URL='${state?.services.registry?.url ?? config.schemaRegistryUrl}'`,
  ];
  // With DATABASE_URL exported, the development key would no longer be found (docs/security.md).
  if (config.origins.piiKeys === 'stack') lines.push(`export PII_KEYS='${formatPiiKeys(config.piiKeys)}'`);
  try {
    const u = new URL(pgUrl);
    lines.push(
      `export PGHOST='${u.hostname}'`,
      `export PGPORT='${u.port || '5432'}'`,
      `export PGUSER='${decodeURIComponent(u.username || 'postgres')}'`,
      `export PGDATABASE='${u.pathname.slice(1)}'`,
    );
  } catch {
    /* a malformed URL was already rejected by the config schema */
  }
  return `${lines.join('\n')}\n`;
}

export function stackExists(config: Config): boolean {
  return existsSync(config.stackDir);
}
