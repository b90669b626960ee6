import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/**
 * Offset commits of the sink runner: issued as soon as a batch is settled, in order (librdkafka
 * sends them to the group coordinator over one connection), never awaited on the write path.
 * `flush` waits until every commit issued so far has been handed to librdkafka (BatchConsumer.commit
 * resolves once queued; the queue reaches the coordinator before the member's next re-join): the
 * runner calls it before giving partitions up (revocation) and on stop.
 * A failed commit is logged and counted, never fatal: the sink's write is idempotent, its stored
 * offsets win over Kafka's, and the next commit covers it.
 */
export class CommitTracker {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    /** Commits one partition's group offset (the consumer's). */
    private readonly send: (partition: number, offset: string) => Promise<void>,
    private readonly log: Logger,
    private readonly onFailure: () => void,
  ) {}

  commit(topic: string, partition: number, offset: string): void {
    const p: Promise<void> = this.send(partition, offset)
      .catch((err: unknown) => {
        this.onFailure();
        this.log.warn({ err: errorMessage(err), partition, offset }, 'offset commit failed (the write is idempotent; a later commit covers it)');
      })
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
