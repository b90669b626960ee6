import type { Config } from '../config/load.js';
import { createKafka } from './client.js';
import { tcpOpen } from '../stack/process.js';

/**
 * Topic administration. The pipeline creates its own topics (idempotently) at stack start and at
 * each component's start, so a user's broker needs no manual set-up.
 */

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  compacted: boolean;
}

export function pipelineTopics(config: Config): TopicSpec[] {
  const n = config.KAFKA_TOPIC_PARTITIONS;
  return [
    { topic: config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, numPartitions: n, compacted: false },
    { topic: config.KAFKA_TOPIC_CONTENT, numPartitions: n, compacted: true },
    { topic: config.KAFKA_TOPIC_ENRICHED, numPartitions: n, compacted: false },
    { topic: config.KAFKA_TOPIC_DLQ, numPartitions: 1, compacted: false },
    { topic: config.KAFKA_TOPIC_CDC_POSITION, numPartitions: 1, compacted: true },
  ];
}

/** Creates the topics that do not exist yet; existing topics are left as they are. */
export async function createTopics(brokers: string[], clientId: string, specs: TopicSpec[]): Promise<string[]> {
  const admin = createKafka(brokers, `${clientId}-admin`).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length === 0) return [];
    await admin.createTopics({
      topics: missing.map((s) => ({
        topic: s.topic,
        numPartitions: s.numPartitions,
        replicationFactor: 1,
        configEntries: s.compacted
          ? [{ name: 'cleanup.policy', value: 'compact' }, { name: 'min.compaction.lag.ms', value: '60000' }]
          : [],
      })),
    }).catch((err: unknown) => {
      // Another component may have created the same topic a moment ago.
      if (!/already exists/i.test(String((err as Error)?.message ?? err))) throw err;
    });
    return missing.map((s) => s.topic);
  } finally {
    await admin.disconnect();
  }
}

export async function ensureTopics(config: Config, brokers: string[] = config.kafkaBrokers): Promise<string[]> {
  return createTopics(brokers, config.KAFKA_CLIENT_ID, pipelineTopics(config));
}

/** True when the broker answers a metadata request (real readiness, not just an open port). */
export async function kafkaReady(brokers: string[]): Promise<boolean> {
  const [host, port] = (brokers[0] ?? '').split(':');
  if (!(await tcpOpen(host ?? '127.0.0.1', Number(port)))) return false;
  const admin = createKafka(brokers, 'engage-readiness').admin();
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
  const admin = createKafka(config.kafkaBrokers, `${config.KAFKA_CLIENT_ID}-admin`).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const topics = pipelineTopics(config).map((s) => s.topic).filter((t) => existing.has(t));
    if (topics.length > 0) await admin.deleteTopics({ topics });
    return topics;
  } finally {
    await admin.disconnect();
  }
}
