import { RdKafka } from '@confluentinc/kafka-javascript';
import { connectionProps, type KafkaConnection } from './client.js';

/**
 * What the Kafka cluster is made of, as clients see it: the brokers its metadata lists (in KRaft,
 * the registered, unfenced ones) and, from their count, the replication the pipeline gives the
 * topics it creates. The KafkaJS-style admin has no describe-cluster call, so the brokers come
 * from the metadata a plain librdkafka client fetches when it connects.
 */

export interface BrokerInfo {
  id: number;
  host: string;
  port: number;
}

/** The brokers the cluster lists now; rejects when no bootstrap server answers within `timeoutMs`. */
export async function clusterBrokers(conn: KafkaConnection, timeoutMs = 10000): Promise<BrokerInfo[]> {
  const client = new RdKafka.Producer({ ...connectionProps(conn), 'client.id': 'engage-cluster-probe' });
  const disconnect = () => new Promise<void>((resolve) => client.disconnect(() => resolve()));
  try {
    const meta = await new Promise<RdKafka.Metadata>((resolve, reject) =>
      client.connect({ timeout: timeoutMs, allTopics: false }, (err, m) => (err ? reject(err) : resolve(m))),
    );
    return meta.brokers.map((b) => ({ id: b.id, host: b.host, port: b.port })).sort((a, b) => a.id - b.id);
  } finally {
    await disconnect().catch(() => undefined);
  }
}

/**
 * The replication of a topic the pipeline creates: KAFKA_REPLICATION_FACTOR when set, else
 * min(3, brokers); `min.insync.replicas` a majority of the replicas but never all of them (2 of 3,
 * 1 of 1 or 2), so with the producers' acks=all an acknowledged record is on a majority and one
 * broker can be lost without stopping writes.
 */
export function topicReplication(brokers: number, configured?: number): { factor: number; minInsync: number } {
  const factor = configured ?? Math.min(3, Math.max(1, brokers));
  return { factor, minInsync: Math.max(1, Math.min(factor - 1, Math.ceil(factor / 2))) };
}
