import { tcpOpen } from '../core/net.js';
import type { Admin, KafkaConnection } from './client.js';

/**
 * The two probes the assignment watch (assignment-watch.ts) asks for, built from a connection and
 * an admin client. Both answer "unknown" rather than throw: the watch then waits.
 */

const PROBE_TIMEOUT_MS = 2000;
const ADMIN_TIMEOUT_MS = 5000;

/** Whether any bootstrap server accepts a TCP connection (a broker process that is down refuses). */
export function brokerReachable(conn: KafkaConnection): () => Promise<boolean> {
  return async () => {
    for (const server of conn.kafkaBrokers) {
      const i = server.lastIndexOf(':');
      if (i > 0 && (await tcpOpen(server.slice(0, i), Number(server.slice(i + 1)), PROBE_TIMEOUT_MS))) return true;
    }
    return false;
  };
}

/** Partitions of `topic` that no member of `groupId` holds, from the group's description; null when unknown. */
export function unheldPartitions(admin: Pick<Admin, 'describeGroups' | 'fetchTopicMetadata'>, groupId: string, topic: string): () => Promise<number[] | null> {
  return async () => {
    try {
      const described = await admin.describeGroups([groupId], { timeout: ADMIN_TIMEOUT_MS });
      const group = described.groups.find((g) => g.groupId === groupId);
      if (group === undefined || group.error) return null;
      const held = new Set<number>();
      for (const m of group.members) for (const tp of m.assignment?.topicPartitions ?? []) if (tp.topic === topic) held.add(tp.partition);
      const meta = await admin.fetchTopicMetadata({ topics: [topic], timeout: ADMIN_TIMEOUT_MS });
      const partitions = meta.find((t) => t.name === topic)?.partitions.map((p) => p.partitionId) ?? [];
      return partitions.filter((p) => !held.has(p)).sort((a, b) => a - b);
    } catch {
      return null;
    }
  };
}
