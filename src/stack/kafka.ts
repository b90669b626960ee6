import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PipelineError } from '../core/errors.js';
import { PRIVATE_SASL_USER, type PrivatePorts } from '../config/load.js';
import { isAlive, portTakenMessage, runCheckedAsync, spawnDetached, tcpOpen, waitUntil } from './process.js';
import { ensureBrokerTls, type BrokerTls } from './kafka-tls.js';
import type { ServiceState } from '../config/stack-state.js';

/**
 * Apache Kafka for the stack: one KRaft node (combined broker and controller) run from the
 * `org.apache.kafka:kafka_2.13` jars that Maven resolves from `stack/pom.xml`. Storage is
 * formatted once; internal topics have replication factor 1 so transactions work on one node.
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

const SCRAM_MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;

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

function serverProperties(dataDir: string, ports: PrivatePorts, tls: BrokerTls): string {
  const { kafka, kafkaController, kafkaSasl, kafkaTls, kafkaSaslTls } = ports;
  const user = PRIVATE_SASL_USER;
  const keystore = (listener: string) => [
    `listener.name.${listener}.ssl.keystore.type=PKCS12`,
    `listener.name.${listener}.ssl.keystore.location=${tls.keystore}`,
    `listener.name.${listener}.ssl.keystore.password=${tls.password}`,
    `listener.name.${listener}.ssl.key.password=${tls.password}`,
  ];
  // PLAIN checks the password given here; SCRAM the credentials stored at format (scramFormatArgs).
  const sasl = (listener: string) => [
    `listener.name.${listener}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${user.username}="${user.password}";`,
    ...SCRAM_MECHANISMS.map(
      (m) =>
        `listener.name.${listener}.${m.toLowerCase()}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    ),
  ];
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${kafkaController}`,
    `listeners=PLAINTEXT://127.0.0.1:${kafka},CONTROLLER://127.0.0.1:${kafkaController},SASL_PLAINTEXT://127.0.0.1:${kafkaSasl},SSL://127.0.0.1:${kafkaTls},SASL_SSL://127.0.0.1:${kafkaSaslTls}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${kafka},SASL_PLAINTEXT://127.0.0.1:${kafkaSasl},SSL://127.0.0.1:${kafkaTls},SASL_SSL://127.0.0.1:${kafkaSaslTls}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL',
    // More ways in, as managed brokers ask of clients (KAFKA_SECURITY_PROTOCOL=sasl_plaintext; ssl,
    // with KAFKA_SSL_CA_LOCATION=<STACK_DIR>/kafka/tls/ca.pem and a client certificate; sasl_ssl).
    `sasl.enabled.mechanisms=PLAIN,${SCRAM_MECHANISMS.join(',')}`,
    ...sasl('sasl_plaintext'),
    ...sasl('sasl_ssl'),
    ...keystore('ssl'),
    ...keystore('sasl_ssl'),
    // Mutual TLS on the SSL listener: a client shows the stack's client certificate
    // (KAFKA_SSL_CERTIFICATE_LOCATION / KAFKA_SSL_KEY_LOCATION); SASL_SSL asks for none.
    'listener.name.ssl.ssl.client.auth=required',
    'listener.name.ssl.ssl.truststore.type=PKCS12',
    `listener.name.ssl.ssl.truststore.location=${tls.truststore}`,
    `listener.name.ssl.ssl.truststore.password=${tls.password}`,
    `log.dirs=${dataDir}`,
    'num.partitions=6',
    'auto.create.topics.enable=false',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=6',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=6',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'num.network.threads=2',
    'num.io.threads=4',
    'log.retention.hours=168',
    'log.segment.bytes=268435456',
    '',
  ].join('\n');
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

/** Starts (formatting on first use) the private broker and waits until it serves metadata. */
export async function startPrivateKafka(
  stackDir: string,
  repoRoot: string,
  ports: PrivatePorts,
  heap: string,
  previous: ServiceState | undefined,
  ready: (brokers: string) => Promise<boolean>,
): Promise<ServiceState> {
  const dir = path.join(stackDir, 'kafka');
  const dataDir = path.join(dir, 'data');
  const log = path.join(dir, 'kafka.log');
  const url = `127.0.0.1:${ports.kafka}`;
  if (previous?.startedByStack && isAlive(previous.pid) && (await ready(url))) return previous;
  mkdirSync(dir, { recursive: true });
  const classpath = await kafkaClasspath(stackDir, repoRoot);
  const props = path.join(dir, 'server.properties');
  writeFileSync(props, serverProperties(dataDir, ports, await ensureBrokerTls(stackDir)));
  writeFileSync(path.join(dir, 'log4j2.properties'), LOG4J2);
  if (!existsSync(path.join(dataDir, 'meta.properties'))) {
    // A cluster id starting with '-' is read as an option by kafka-storage (Kafka's own
    // Uuid.randomUuid avoids it too): clearing the top bit keeps the first character in A–f.
    const id = randomBytes(16);
    id[0] = (id[0] ?? 0) & 0x7f;
    const clusterId = id.toString('base64url');
    await runCheckedAsync(
      'java',
      kafkaJavaArgs(classpath, dir, heap, 'kafka.tools.StorageTool', [
        'format',
        '-t',
        clusterId,
        '-c',
        props,
        '--ignore-formatted',
        ...scramFormatArgs(),
      ]),
      'Formatting Kafka storage',
    );
    writeFileSync(
      scramMarker(stackDir),
      `${SCRAM_MECHANISMS.join(' ')} for ${PRIVATE_SASL_USER.username}, cluster ${clusterId}\n`,
    );
  }
  if (await tcpOpen('127.0.0.1', ports.kafka)) {
    throw new PipelineError(
      'STACK_START_FAILED',
      portTakenMessage(ports.kafka, 'Kafka', 'Stop it, set KAFKA_BOOTSTRAP_SERVERS to use a broker of your own'),
    );
  }
  for (const [port, listener] of [
    [ports.kafkaSasl, 'SASL_PLAINTEXT'],
    [ports.kafkaTls, 'SSL'],
    [ports.kafkaSaslTls, 'SASL_SSL'],
  ] as const) {
    if (await tcpOpen('127.0.0.1', port)) {
      throw new PipelineError(
        'STACK_START_FAILED',
        portTakenMessage(
          port,
          `Kafka's ${listener} listener`,
          'Stop it, set KAFKA_BOOTSTRAP_SERVERS to use a broker of your own',
        ),
      );
    }
  }
  // A broker restarted right after its predecessor stopped can find the listener port still held
  // by the old connections (TIME_WAIT, up to a minute): it exits with "Address already in use".
  // That, and only that, is retried until the port is released.
  const deadline = Date.now() + 90000;
  for (;;) {
    const logStart = existsSync(log) ? statSync(log).size : 0;
    const pid = spawnDetached('java', kafkaJavaArgs(classpath, dir, heap, 'kafka.Kafka', [props]), log);
    try {
      await waitUntil('Kafka (private)', () => ready(url), { timeoutMs: 120000, log, alive: () => isAlive(pid) });
      return { url, startedByStack: true, pid, log, dataDir };
    } catch (err) {
      const bindFailed = readFileSync(log, 'utf8').slice(logStart).includes('Address already in use');
      if (!bindFailed || isAlive(pid) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}
