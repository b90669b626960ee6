import { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { tcpOpen } from '../core/net.js';
import { AssignmentWatch, type GroupView } from './assignment-watch.js';
import type { Admin, KafkaConnection } from './client.js';

/**
 * The assignment watch (assignment-watch.ts) wired to a BatchConsumer: the two probes it asks for,
 * built from a connection and an admin client (both answer "unknown" rather than throw: the watch
 * then waits), and `watchAssignment`, which the processor and the sink runner start.
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
export function unheldPartitions(
  admin: Pick<Admin, 'describeGroups' | 'fetchTopicMetadata'>,
  groupId: string,
  topic: string,
): () => Promise<number[] | null> {
  return async () => {
    try {
      const described = await admin.describeGroups([groupId], { timeout: ADMIN_TIMEOUT_MS });
      const group = described.groups.find((g) => g.groupId === groupId);
      if (group === undefined || group.error) return null;
      const held = new Set<number>();
      for (const m of group.members)
        for (const tp of m.assignment?.topicPartitions ?? []) if (tp.topic === topic) held.add(tp.partition);
      const meta = await admin.fetchTopicMetadata({ topics: [topic], timeout: ADMIN_TIMEOUT_MS });
      const partitions = meta.find((t) => t.name === topic)?.partitions.map((p) => p.partitionId) ?? [];
      return partitions.filter((p) => !held.has(p)).sort((a, b) => a - b);
    } catch {
      return null;
    }
  };
}

/** What a BatchConsumer exposes of its membership (batch-consumer.ts). */
export interface WatchedConsumer {
  assigned(): number[];
  groupView(): GroupView | null;
  rebalanceWaitMs(): number;
}

/**
 * Starts the assignment watch of one consumer: its membership, the broker probe and the group
 * question answered by `admin`; `onStarved` gets a CONSUMER_STARVED error (retriable: the owner
 * exits and its supervisor restarts it). Stop the returned watch before closing the consumer.
 */
export function watchAssignment(
  consumer: WatchedConsumer,
  o: {
    connection: KafkaConnection;
    admin: Pick<Admin, 'describeGroups' | 'fetchTopicMetadata'>;
    groupId: string;
    topic: string;
    boundMs: number;
    who: string;
    log: Logger;
    onStarved(err: PipelineError): void;
  },
): AssignmentWatch {
  const watch = new AssignmentWatch({
    groupId: o.groupId,
    topic: o.topic,
    held: () => consumer.assigned(),
    brokerReachable: brokerReachable(o.connection),
    unheldPartitions: unheldPartitions(o.admin, o.groupId, o.topic),
    group: () => consumer.groupView(),
    rebalanceWaitMs: () => consumer.rebalanceWaitMs(),
    boundMs: o.boundMs,
    log: o.log,
    onStarved: (reason) =>
      o.onStarved(
        new PipelineError('CONSUMER_STARVED', `${o.who} stopped consuming: ${reason}; exiting so it is restarted`, {
          retriable: true,
        }),
      ),
  });
  watch.start();
  return watch;
}
