import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PRIVATE_SASL_USER, type PrivatePorts } from '../config/load.js';
import type { BrokerTls } from './kafka-tls.js';
import { topicReplication } from '../kafka/cluster.js';

/**
 * What each node of the private Kafka is: its ports, its folders and its server.properties. One
 * node by default; `engage stack up --kafka-brokers N` (STACK_KAFKA_BROKERS) makes N combined
 * broker/controller nodes with one cluster id, the controller quorum of all N.
 *
 * Contract: node 1 keeps the one-node stack's layout and ports (`<STACK_DIR>/kafka`, the Kafka
 * port 29092 + STACK_PORT_OFFSET and the four after it); node n ≥ 2 lives in
 * `<STACK_DIR>/kafka/node-<n>` and listens on 27092 + STACK_PORT_OFFSET + 10·(n − 2) and the four
 * after it. The broker count is fixed when the storage is formatted (recorded in
 * `<STACK_DIR>/kafka/brokers`); internal topics get the replication of `clusterReplication`.
 */

export const MAX_KAFKA_BROKERS = 5;

export const SCRAM_MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;

/**
 * The failure-detection timeouts every node runs with (Kafka's defaults, written out because the
 * broker-loss test derives its bound on a stall from them): a broker that stops heartbeating is
 * fenced — dropped from every ISR, its partitions' leadership moved — after BROKER_SESSION_MS; a
 * controller that stops answering is replaced by a quorum election after QUORUM_FETCH_MS plus
 * up to twice QUORUM_ELECTION_MS (the timeout and its random backoff).
 */
export const KAFKA_TIMEOUTS = {
  BROKER_SESSION_MS: 9000,
  BROKER_HEARTBEAT_MS: 2000,
  QUORUM_FETCH_MS: 2000,
  QUORUM_ELECTION_MS: 1000,
} as const;

export interface NodePorts {
  kafka: number;
  controller: number;
  sasl: number;
  tls: number;
  saslTls: number;
}

export interface KafkaNode {
  /** node.id, 1 … N. */
  id: number;
  dir: string;
  dataDir: string;
  log: string;
  props: string;
  ports: NodePorts;
  /** The PLAINTEXT listener, as clients bootstrap from it. */
  url: string;
}

/** The ports of node `id` of the stack whose node 1 has `ports`. */
export function nodePorts(ports: PrivatePorts, id: number): NodePorts {
  if (id === 1)
    return {
      kafka: ports.kafka,
      controller: ports.kafkaController,
      sasl: ports.kafkaSasl,
      tls: ports.kafkaTls,
      saslTls: ports.kafkaSaslTls,
    };
  const base = ports.kafka - 2000 + 10 * (id - 2);
  return { kafka: base, controller: base + 1, sasl: base + 2, tls: base + 3, saslTls: base + 4 };
}

export function kafkaNodes(stackDir: string, ports: PrivatePorts, count: number): KafkaNode[] {
  return Array.from({ length: count }, (_, i) => {
    const id = i + 1;
    const dir = id === 1 ? path.join(stackDir, 'kafka') : path.join(stackDir, 'kafka', `node-${id}`);
    const p = nodePorts(ports, id);
    return {
      id,
      dir,
      dataDir: path.join(dir, 'data'),
      log: path.join(dir, 'kafka.log'),
      props: path.join(dir, 'server.properties'),
      ports: p,
      url: `127.0.0.1:${p.kafka}`,
    };
  });
}

/** The bootstrap list of an N-node private cluster (every node's PLAINTEXT listener). */
export function clusterUrl(ports: PrivatePorts, count: number): string {
  return Array.from({ length: count }, (_, i) => `127.0.0.1:${nodePorts(ports, i + 1).kafka}`).join(',');
}

/** Replication of the internal topics on `brokers` nodes: the pipeline's own (kafka/cluster.ts `topicReplication`). */
export function clusterReplication(brokers: number): { factor: number; minInsync: number } {
  return topicReplication(brokers);
}

function brokersMarker(stackDir: string): string {
  return path.join(stackDir, 'kafka', 'brokers');
}

/** The broker count the stack's storage was formatted with; null when never formatted (1 for storage older than the marker). */
export function formattedBrokers(stackDir: string): number | null {
  const marker = brokersMarker(stackDir);
  if (existsSync(marker)) return Number(readFileSync(marker, 'utf8').trim()) || 1;
  return existsSync(path.join(stackDir, 'kafka', 'data', 'meta.properties')) ? 1 : null;
}

export function recordFormattedBrokers(stackDir: string, count: number): void {
  writeFileSync(brokersMarker(stackDir), `${count}\n`);
}

export function serverProperties(node: KafkaNode, nodes: readonly KafkaNode[], tls: BrokerTls): string {
  const { kafka, controller, sasl: saslPort, tls: tlsPort, saslTls } = node.ports;
  const user = PRIVATE_SASL_USER;
  const { factor, minInsync } = clusterReplication(nodes.length);
  const keystore = (listener: string) => [
    `listener.name.${listener}.ssl.keystore.type=PKCS12`,
    `listener.name.${listener}.ssl.keystore.location=${tls.keystore}`,
    `listener.name.${listener}.ssl.keystore.password=${tls.password}`,
    `listener.name.${listener}.ssl.key.password=${tls.password}`,
  ];
  // PLAIN checks the password given here; SCRAM the credentials stored at format (kafka.ts).
  const sasl = (listener: string) => [
    `listener.name.${listener}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${user.username}="${user.password}";`,
    ...SCRAM_MECHANISMS.map(
      (m) =>
        `listener.name.${listener}.${m.toLowerCase()}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    ),
  ];
  return [
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${nodes.map((n) => `${n.id}@127.0.0.1:${n.ports.controller}`).join(',')}`,
    `listeners=PLAINTEXT://127.0.0.1:${kafka},CONTROLLER://127.0.0.1:${controller},SASL_PLAINTEXT://127.0.0.1:${saslPort},SSL://127.0.0.1:${tlsPort},SASL_SSL://127.0.0.1:${saslTls}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${kafka},SASL_PLAINTEXT://127.0.0.1:${saslPort},SSL://127.0.0.1:${tlsPort},SASL_SSL://127.0.0.1:${saslTls}`,
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
    `log.dirs=${node.dataDir}`,
    'num.partitions=6',
    'auto.create.topics.enable=false',
    // Internal topics (group offsets, transaction state) replicated like the pipeline's own:
    // factor 1 on one node (transactions work there), 3 with min ISR 2 on three.
    `default.replication.factor=${factor}`,
    `min.insync.replicas=${minInsync}`,
    `offsets.topic.replication.factor=${factor}`,
    'offsets.topic.num.partitions=6',
    `transaction.state.log.replication.factor=${factor}`,
    `transaction.state.log.min.isr=${minInsync}`,
    'transaction.state.log.num.partitions=6',
    `share.coordinator.state.topic.replication.factor=${factor}`,
    `share.coordinator.state.topic.min.isr=${minInsync}`,
    'unclean.leader.election.enable=false',
    `broker.session.timeout.ms=${KAFKA_TIMEOUTS.BROKER_SESSION_MS}`,
    `broker.heartbeat.interval.ms=${KAFKA_TIMEOUTS.BROKER_HEARTBEAT_MS}`,
    `controller.quorum.fetch.timeout.ms=${KAFKA_TIMEOUTS.QUORUM_FETCH_MS}`,
    `controller.quorum.election.timeout.ms=${KAFKA_TIMEOUTS.QUORUM_ELECTION_MS}`,
    'group.initial.rebalance.delay.ms=0',
    'num.network.threads=2',
    'num.io.threads=4',
    'log.retention.hours=168',
    'log.segment.bytes=268435456',
    '',
  ].join('\n');
}
