import type { Config } from '../config/load.js';
import { errorMessage, PipelineError } from '../core/errors.js';
import { createKafka, messageLimits, type Admin, type KafkaConnection } from './client.js';
import { tcpOpen } from '../core/net.js';
import { clusterBrokers, topicReplication } from './cluster.js';

/**
 * Topic administration. The pipeline creates its own topics (idempotently) at stack start and at
 * each component's start, so a user's broker needs no manual set-up. Each is created with
 * `max.message.bytes` = KAFKA_MESSAGE_MAX_BYTES + framing headroom (client.ts `messageLimits`), so
 * any record a pipeline producer accepts is accepted by the broker, and with the replication of
 * cluster.ts `topicReplication` (KAFKA_REPLICATION_FACTOR, else min(3, the cluster's brokers);
 * `min.insync.replicas` 2 of 3). An existing topic is left as it is (the client library cannot
 * read or alter topic configs): its limit must be at least that (docs/cdc.md "Oversized records").
 */

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  compacted: boolean;
  /** The topic's `max.message.bytes` (unset: the broker's default). */
  maxMessageBytes?: number;
}

export function pipelineTopics(config: Config): TopicSpec[] {
  const n = config.KAFKA_TOPIC_PARTITIONS;
  const maxMessageBytes = messageLimits(config).topic;
  return [
    { topic: config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, numPartitions: n, compacted: false, maxMessageBytes },
    { topic: config.KAFKA_TOPIC_CONTENT, numPartitions: n, compacted: true, maxMessageBytes },
    { topic: config.KAFKA_TOPIC_ENRICHED, numPartitions: n, compacted: false, maxMessageBytes },
    { topic: config.KAFKA_TOPIC_DLQ, numPartitions: 1, compacted: false, maxMessageBytes },
    { topic: config.KAFKA_TOPIC_CDC_POSITION, numPartitions: 1, compacted: true, maxMessageBytes },
  ];
}

/**
 * Creates the topics that do not exist yet, replicated `replicationFactor` times (unset: from the
 * cluster's broker count); existing topics are left as they are.
 */
export async function createTopics(
  conn: KafkaConnection,
  clientId: string,
  specs: TopicSpec[],
  replicationFactor?: number,
): Promise<string[]> {
  const admin = createKafka(conn, `${clientId}-admin`).admin();
  try {
    let existing: Set<string>;
    try {
      await admin.connect();
      existing = new Set(await admin.listTopics());
    } catch (err) {
      throw kafkaUnreachable(conn, err);
    }
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length === 0) return [];
    const brokers = replicationFactor === undefined ? (await clusterBrokers(conn)).length : 0;
    const { factor, minInsync } = topicReplication(brokers, replicationFactor);
    await admin
      .createTopics({
        topics: missing.map((s) => ({
          topic: s.topic,
          numPartitions: s.numPartitions,
          replicationFactor: factor,
          configEntries: [
            { name: 'min.insync.replicas', value: String(minInsync) },
            ...(s.compacted
              ? [
                  { name: 'cleanup.policy', value: 'compact' },
                  { name: 'min.compaction.lag.ms', value: '60000' },
                ]
              : []),
            ...(s.maxMessageBytes ? [{ name: 'max.message.bytes', value: String(s.maxMessageBytes) }] : []),
          ],
        })),
      })
      .catch((err: unknown) => {
        // The client wraps each topic's error in one "Topic creation errors": the causes are inside.
        const inner = (err as { errors?: Array<{ message?: string }> }).errors ?? [];
        const message = [String((err as Error)?.message ?? err), ...inner.map((e) => e.message ?? '')].join('; ');
        // Another component may have created the same topic a moment ago.
        if (/already exists/i.test(message)) return;
        if (/replication factor/i.test(message))
          throw new PipelineError(
            'SERVICE_MISCONFIGURED',
            `Kafka refused to create ${missing.map((s) => s.topic).join(', ')} with replication factor ${factor}: ${message}; set KAFKA_REPLICATION_FACTOR to at most the cluster's brokers${brokers ? ` (${brokers})` : ''}, or unset it`,
            { cause: err },
          );
        throw err;
      });
    await visible(
      admin,
      missing.map((s) => s.topic),
    );
    return missing.map((s) => s.topic);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Waits (up to 30 s) until the broker's metadata lists `topics`: a created topic reaches each
 * broker's metadata a moment after the controller answered, and a caller's next request (a
 * producer's first write, a test's listing) must find it.
 */
async function visible(admin: Admin, topics: string[]): Promise<void> {
  const deadline = Date.now() + 30000;
  for (;;) {
    const listed = new Set(await admin.listTopics().catch(() => []));
    if (topics.every((t) => listed.has(t)) || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A failure to reach the brokers, as an error a person can act on (librdkafka says only "transport
 * failure" or "timed out"): for the first request of any admin client (a PipelineError is kept).
 */
export function kafkaUnreachable(conn: KafkaConnection, err: unknown): PipelineError {
  if (err instanceof PipelineError) return err;
  const protocol = conn.kafkaSecurity?.['security.protocol'];
  const checks = [
    ...(protocol?.startsWith('sasl_') ? ['KAFKA_SASL_MECHANISM / KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD'] : []),
    ...(protocol?.endsWith('ssl')
      ? [
          "KAFKA_SSL_CA_LOCATION (the brokers' CA)",
          'KAFKA_SSL_CERTIFICATE_LOCATION / KAFKA_SSL_KEY_LOCATION (when they ask for a client certificate)',
        ]
      : []),
  ];
  const hint = protocol
    ? `with KAFKA_SECURITY_PROTOCOL=${protocol}, check ${checks.join(', ')} (the warnings logged before this name the cause)`
    : 'is it running, and does it ask for TLS or a password (KAFKA_SECURITY_PROTOCOL)?';
  return new PipelineError(
    'SERVICE_UNREACHABLE',
    `Kafka at ${conn.kafkaBrokers.join(',')} did not answer: ${errorMessage(err)}; ${hint}`,
    { retriable: true, cause: err },
  );
}

export async function ensureTopics(config: Config, conn: KafkaConnection = config): Promise<string[]> {
  return createTopics(conn, config.KAFKA_CLIENT_ID, pipelineTopics(config), config.KAFKA_REPLICATION_FACTOR);
}

/** True when a broker of the list answers a metadata request (real readiness, not just an open port). */
export async function kafkaReady(conn: KafkaConnection): Promise<boolean> {
  // Any bootstrap server will do: a cluster with one broker down still answers.
  const open = await Promise.all(
    conn.kafkaBrokers.map((b) => {
      const [host, port] = b.trim().split(':');
      return tcpOpen(host || '127.0.0.1', Number(port));
    }),
  );
  if (!open.some(Boolean)) return false;
  const admin = createKafka(conn, 'engage-readiness').admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Deletes the pipeline topics of `config` that exist (a throwaway pipeline's: a test's, a
 * benchmark's). Never called by the pipeline itself. Returns the topics deleted.
 */
export async function deletePipelineTopics(config: Config): Promise<string[]> {
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-admin`).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const topics = pipelineTopics(config)
      .map((s) => s.topic)
      .filter((t) => existing.has(t));
    if (topics.length > 0) await admin.deleteTopics({ topics });
    return topics;
  } finally {
    await admin.disconnect();
  }
}
