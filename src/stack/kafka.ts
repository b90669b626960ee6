import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PipelineError } from '../core/errors.js';
import { PRIVATE_SASL_USER, type PrivatePorts } from '../config/load.js';
import { isAlive, portTakenMessage, runCheckedAsync, spawnDetached, stopPid, tcpOpen, waitUntil } from './process.js';
import { ensureBrokerTls } from './kafka-tls.js';
import type { NodeState, ServiceState } from '../config/stack-state.js';
import {
  SCRAM_MECHANISMS,
  formattedBrokers,
  kafkaNodes,
  recordFormattedBrokers,
  serverProperties,
  type KafkaNode,
} from './kafka-nodes.js';

/**
 * Apache Kafka for the stack: KRaft nodes (each a combined broker and controller; one by default,
 * N with `engage stack up --kafka-brokers N`: kafka-nodes.ts) run from the
 * `org.apache.kafka:kafka_2.13` jars that Maven resolves from `stack/pom.xml`. Storage is
 * formatted once, every node with the same cluster id.
 */

/** The broker's classpath, resolved by Maven once per pom version and cached in the stack folder. */
export async function kafkaClasspath(stackDir: string, repoRoot: string): Promise<string> {
  const pom = path.join(repoRoot, 'stack', 'pom.xml');
  const hash = createHash('sha1').update(readFileSync(pom)).digest('hex').slice(0, 12);
  const cache = path.join(stackDir, 'kafka', `classpath-${hash}.txt`);
  if (!existsSync(cache)) {
    mkdirSync(path.dirname(cache), { recursive: true });
    await runCheckedAsync(
      'mvn',
      ['-q', '-B', '-f', pom, 'dependency:build-classpath', `-Dmdep.outputFile=${cache}`],
      'Resolving the Kafka jars with Maven (needs Maven Central)',
    );
  }
  return readFileSync(cache, 'utf8').trim();
}

/**
 * The SCRAM credentials of PRIVATE_SASL_USER, stored in the cluster's metadata when the storage is
 * formatted. Storage formatted by an earlier version has none: `scramReady` tells (its marker file
 * is written with the format).
 */
function scramFormatArgs(): string[] {
  const { username, password } = PRIVATE_SASL_USER;
  return SCRAM_MECHANISMS.flatMap((m) => ['--add-scram', `${m}=[name=${username},password=${password}]`]);
}

function scramMarker(stackDir: string): string {
  return path.join(stackDir, 'kafka', 'scram-users');
}

/** True when the private broker's storage was formatted with the SCRAM user. */
export function scramReady(stackDir: string): boolean {
  return existsSync(scramMarker(stackDir));
}

const LOG4J2 = [
  'status = warn',
  'appender.console.type = Console',
  'appender.console.name = STDOUT',
  'appender.console.layout.type = PatternLayout',
  'appender.console.layout.pattern = [%d] %p %m (%c)%n',
  'rootLogger.level = INFO',
  'rootLogger.appenderRef.stdout.ref = STDOUT',
  'logger.kafka.name = kafka',
  'logger.kafka.level = WARN',
  'logger.org.name = org.apache.kafka',
  'logger.org.level = WARN',
  'logger.state.name = state.change.logger',
  'logger.state.level = WARN',
  '',
].join('\n');

export function kafkaJavaArgs(
  classpath: string,
  dir: string,
  heap: string,
  mainClass: string,
  args: string[],
): string[] {
  return [
    `-Xms${heap}`,
    `-Xmx${heap}`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:ActiveProcessorCount=2',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${path.join(dir, 'log4j2.properties')}`,
    `-Dkafka.logs.dir=${dir}`,
    '-cp',
    classpath,
    mainClass,
    ...args,
  ];
}

export async function kafkaAnswers(host: string, port: number): Promise<boolean> {
  return tcpOpen(host, port);
}

export interface KafkaStart {
  stackDir: string;
  repoRoot: string;
  ports: PrivatePorts;
  /** Each node's JVM heap (STACK_KAFKA_HEAP). */
  heap: string;
  /** Nodes of the cluster (1 … MAX_KAFKA_BROKERS); fixed once the storage is formatted. */
  brokers: number;
  previous: ServiceState | undefined;
  /** True when the node at this address serves metadata. */
  ready: (url: string) => Promise<boolean>;
  /** How many brokers the cluster reached through this bootstrap list names. */
  brokersSeen: (bootstrap: string) => Promise<number>;
}

/** The nodes a previous `stack up` started (a one-node state from before `nodes` existed is node 1). */
function previousNodes(previous: ServiceState | undefined): NodeState[] {
  if (!previous?.startedByStack) return [];
  if (previous.nodes) return previous.nodes;
  if (!previous.pid) return [];
  return [{ id: 1, url: previous.url, pid: previous.pid, log: previous.log ?? '', dataDir: previous.dataDir ?? '' }];
}

/**
 * Starts (formatting on first use) the private Kafka — `brokers` combined broker/controller nodes
 * — and waits until every node serves metadata and the cluster lists all of them. Nodes still
 * running from a previous `up` are kept; only the dead ones are started. Storage formatted for
 * another broker count is refused, with the way out.
 */
export async function startPrivateKafka(o: KafkaStart): Promise<ServiceState> {
  const nodes = kafkaNodes(o.stackDir, o.ports, o.brokers);
  const url = nodes.map((n) => n.url).join(',');
  const formatted = formattedBrokers(o.stackDir);
  if (formatted !== null && formatted !== o.brokers) {
    throw new PipelineError(
      'STACK_START_FAILED',
      `the stack's Kafka storage (${path.join(o.stackDir, 'kafka')}) was formatted for ${formatted} broker(s), not ${o.brokers}. Run \`engage stack up --kafka-brokers ${formatted}\`, or \`engage stack down\` and remove ${path.join(o.stackDir, 'kafka')} (its topics are lost) to start again with ${o.brokers}, or use another STACK_DIR.`,
    );
  }
  const before = new Map(previousNodes(o.previous).map((n) => [n.id, n]));
  const running = nodes.filter((n) => {
    const p = before.get(n.id);
    return p !== undefined && p.url === n.url && isAlive(p.pid);
  });
  const clusterUp = async () => (await o.brokersSeen(url).catch(() => 0)) >= nodes.length;
  if (o.previous && running.length === nodes.length && (await clusterUp())) return o.previous;
  const classpath = await kafkaClasspath(o.stackDir, o.repoRoot);
  const tls = await ensureBrokerTls(o.stackDir);
  for (const n of nodes) {
    mkdirSync(n.dir, { recursive: true });
    writeFileSync(n.props, serverProperties(n, nodes, tls));
    writeFileSync(path.join(n.dir, 'log4j2.properties'), LOG4J2);
  }
  if (formatted === null) await formatNodes(o, classpath, nodes);
  const started = new Map<number, number>();
  await Promise.all(
    nodes
      .filter((n) => !running.includes(n))
      .map(async (n) => started.set(n.id, await startNode(o, classpath, n, nodes.length))),
  );
  const nodeState = nodes.map((n): NodeState => ({
    id: n.id,
    url: n.url,
    pid: started.get(n.id) ?? before.get(n.id)?.pid ?? 0,
    log: n.log,
    dataDir: n.dataDir,
  }));
  const first = nodeState[0] as NodeState;
  if (nodes.length > 1)
    await waitUntil(`Kafka (private, all ${nodes.length} brokers registered)`, clusterUp, {
      timeoutMs: 120000,
      log: first.log,
    });
  return {
    url,
    startedByStack: true,
    pid: first.pid,
    log: first.log,
    dataDir: first.dataDir,
    ...(nodes.length > 1 ? { nodes: nodeState } : {}),
  };
}

/** Formats every node's storage with one new cluster id (and the SCRAM user); records the broker count. */
async function formatNodes(o: KafkaStart, classpath: string, nodes: readonly KafkaNode[]): Promise<void> {
  // A cluster id starting with '-' is read as an option by kafka-storage (Kafka's own
  // Uuid.randomUuid avoids it too): clearing the top bit keeps the first character in A–f.
  const id = randomBytes(16);
  id[0] = (id[0] ?? 0) & 0x7f;
  const clusterId = id.toString('base64url');
  await Promise.all(
    nodes.map((n) =>
      runCheckedAsync(
        'java',
        kafkaJavaArgs(classpath, n.dir, o.heap, 'kafka.tools.StorageTool', [
          'format',
          '-t',
          clusterId,
          '-c',
          n.props,
          '--ignore-formatted',
          ...scramFormatArgs(),
        ]),
        `Formatting Kafka storage (node ${n.id})`,
      ),
    ),
  );
  writeFileSync(
    scramMarker(o.stackDir),
    `${SCRAM_MECHANISMS.join(' ')} for ${PRIVATE_SASL_USER.username}, cluster ${clusterId}\n`,
  );
  recordFormattedBrokers(o.stackDir, nodes.length);
}

/** Starts one node after checking its ports are free; waits until it serves metadata. Returns its pid. */
async function startNode(o: KafkaStart, classpath: string, n: KafkaNode, count: number): Promise<number> {
  const name = count > 1 ? `Kafka node ${n.id}` : 'Kafka';
  const fix = 'Stop it, set KAFKA_BOOTSTRAP_SERVERS to use a broker of your own';
  for (const [port, what] of [
    [n.ports.kafka, name],
    [n.ports.sasl, `${name}'s SASL_PLAINTEXT listener`],
    [n.ports.tls, `${name}'s SSL listener`],
    [n.ports.saslTls, `${name}'s SASL_SSL listener`],
  ] as const) {
    if (await tcpOpen('127.0.0.1', port))
      throw new PipelineError('STACK_START_FAILED', portTakenMessage(port, what, fix));
  }
  // A broker restarted right after its predecessor stopped can find the listener port still held
  // by the old connections (TIME_WAIT, up to a minute): it exits with "Address already in use".
  // That, and only that, is retried until the port is released.
  const deadline = Date.now() + 90000;
  for (;;) {
    const logStart = existsSync(n.log) ? statSync(n.log).size : 0;
    const pid = spawnDetached('java', kafkaJavaArgs(classpath, n.dir, o.heap, 'kafka.Kafka', [n.props]), n.log);
    try {
      // A node joining a running cluster recovers its logs and catches up with the quorum before it
      // answers: minutes on a loaded machine (up to 115 s seen with the load average above 60).
      await waitUntil(`${name} (private)`, () => o.ready(n.url), {
        timeoutMs: count > 1 ? 300000 : 120000,
        log: n.log,
        alive: () => isAlive(pid),
      });
      return pid;
    } catch (err) {
      const bindFailed = readFileSync(n.log, 'utf8').slice(logStart).includes('Address already in use');
      if (!bindFailed || isAlive(pid) || Date.now() > deadline) {
        // Not ready in time: stopped, so that no broker the state file does not name holds the ports.
        await stopPid(pid, 30000);
        throw err;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}
